"""cuDNN benchmark mode for training only, not for whole-image validation."""
import torch
from mmengine.hooks import Hook

from mmseg.registry import HOOKS


@HOOKS.register_module()
class ValCudnnBenchmarkHook(Hook):
    """Set ``torch.backends.cudnn.benchmark`` while validating or testing.

    mmseg's default runtime sets ``env_cfg.cudnn_benchmark=True``: good for
    training, whose crops all have one size, so cuDNN times its algorithms
    for each conv layer once. Validation runs whole images of varying size
    (VOC's val split: hundreds of distinct shapes), and in benchmark mode
    every new shape makes cuDNN time all algorithms of every conv layer
    again, which costs more than it saves. This hook sets the flag to
    ``benchmark`` in ``before_val`` / ``before_test`` and gives back the
    value it found in ``after_val`` / ``after_test``: training keeps
    benchmark mode.

    Nested or unpaired calls (a test run inside a validation, an
    ``after_val`` without ``before_val``) restore only the value saved by
    the outermost ``before_*``; an ``after_*`` with nothing saved changes
    nothing.

    Args:
        benchmark (bool): The flag while validating or testing. Defaults
            to False.

    The incremental experiment's plan adds one (with the default) to every
    step config unless its ``custom_hooks`` hold one already.
    """

    priority = 'NORMAL'

    def __init__(self, benchmark: bool = False) -> None:
        self.benchmark = bool(benchmark)
        self._depth = 0
        self._saved = False

    def _enter(self) -> None:
        if self._depth == 0:
            self._saved = torch.backends.cudnn.benchmark
        self._depth += 1
        torch.backends.cudnn.benchmark = self.benchmark

    def _exit(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            torch.backends.cudnn.benchmark = self._saved

    def before_val(self, runner) -> None:
        """Set the flag to ``benchmark``; save the training value."""
        self._enter()

    def after_val(self, runner) -> None:
        """Give back the saved value."""
        self._exit()

    def before_test(self, runner) -> None:
        """Set the flag to ``benchmark``; save the previous value."""
        self._enter()

    def after_test(self, runner) -> None:
        """Give back the saved value."""
        self._exit()
