"""Copy each batch to the GPU without a host sync."""
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor

from mmseg.registry import HOOKS
from .runner_model import on_cuda, runner_model


@HOOKS.register_module()
class NonBlockingCopyHook(Hook):
    """Let the data preprocessor copy batches to the GPU non-blocking.

    mmengine's ``BaseDataPreprocessor`` moves each image and label to the
    device with ``non_blocking=False`` (mmseg's ``SegDataPreProcessor``
    takes no argument to change it): after every copy PyTorch waits for
    the GPU to finish all the work queued before it, so the host cannot
    prepare the next iteration while the GPU runs this one. Non-blocking,
    the copies go into the same stream, in order, and the values are the
    same; from the DataLoader's pageable memory CUDA stages the data before
    the call returns, so nothing reads a freed buffer. The hook sets the
    preprocessor's ``non_blocking`` before training, validation and test
    when the model is on a GPU; elsewhere it changes nothing.
    """

    priority = 'HIGH'

    def _set(self, runner) -> None:
        model = runner_model(runner)
        preprocessor = getattr(model, 'data_preprocessor', None)
        if isinstance(preprocessor, BaseDataPreprocessor) and on_cuda(model):
            preprocessor._non_blocking = True

    def before_train(self, runner) -> None:
        self._set(runner)

    def before_val(self, runner) -> None:
        self._set(runner)

    def before_test(self, runner) -> None:
        self._set(runner)
