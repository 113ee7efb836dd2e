"""ADE20K split by incremental step, with 0 ("other") as the background."""
from mmseg.datasets import ADE20KDataset
from mmseg.registry import DATASETS

from .incremental_mixin import IncrementalDatasetMixin


@DATASETS.register_module()
class IncrementalADE20KDataset(IncrementalDatasetMixin, ADE20KDataset):
    """ADE20K restricted to the split of step k of an incremental task.

    Unlike mmseg's ``ADE20KDataset`` (150 classes, label 0 ignored through
    ``reduce_zero_label``), incremental protocols (MiB, PLOP) treat label 0
    ("other") as the background class 0 of 151, so ``reduce_zero_label`` is
    off and the metainfo lists ``'background'`` first.

    Args:
        task (str | dict): An ADE task of :func:`mmseg_incremental.get_task`
            (``'100-50'``, ``'100-10'``, ``'100-5'``, ``'50-50'``) or a
            custom ``dict(steps=[[0, ...], ...])``.
        step (int): The step k. Defaults to 0.
        setting (str): ``'sequential'``, ``'disjoint'`` or ``'overlapped'``.
            Defaults to ``'sequential'``.
        eval_protocol (str): ``'seen_only'``, ``'mask_unseen'`` or
            ``'unseen_as_background'``. Defaults to ``'seen_only'``.
        **kwargs: :class:`mmseg.datasets.ADE20KDataset` arguments.
    """

    DATASET_NAME = 'ade'
    METAINFO = dict(
        classes=('background', ) + ADE20KDataset.METAINFO['classes'],
        palette=[[0, 0, 0]] + ADE20KDataset.METAINFO['palette'])

    def __init__(self,
                 *args,
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        if reduce_zero_label:
            raise ValueError(
                'IncrementalADE20KDataset keeps label 0 as the background '
                'class; set reduce_zero_label=False (or leave it out).')
        super().__init__(*args, reduce_zero_label=False, **kwargs)
