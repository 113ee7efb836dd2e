"""Pascal VOC 2012 (plain or SBD-augmented) split by incremental step."""
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS

from .incremental_mixin import IncrementalDatasetMixin


@DATASETS.register_module()
class IncrementalVOCDataset(IncrementalDatasetMixin, PascalVOCDataset):
    """Pascal VOC restricted to the split of step k of an incremental task.

    Works on plain VOC (``SegmentationClass`` + ``ImageSets/Segmentation/
    train.txt``) and on SBD-augmented VOC (``SegmentationClassAug`` +
    ``train_aug.txt``): only ``data_prefix`` and ``ann_file`` differ. The
    classes of the dataset's metainfo are S_k in output order; the metainfo
    also carries ``class_steps`` (the output indices learnt at each step 0..k)
    for :class:`IncrementalIoUMetric`.

    Args:
        task (str | dict): A VOC task of :func:`mmseg_incremental.get_task`
            (``'19-1'``, ``'15-5'``, ``'15-1'``, ...) or a custom
            ``dict(steps=[[0, ...], ...])``.
        step (int): The step k. Defaults to 0.
        setting (str): ``'sequential'``, ``'disjoint'`` or ``'overlapped'``.
            Defaults to ``'sequential'``.
        eval_protocol (str): ``'seen_only'``, ``'mask_unseen'`` or
            ``'unseen_as_background'`` (used when ``test_mode=True``).
            Defaults to ``'seen_only'``.
        **kwargs: :class:`mmseg.datasets.PascalVOCDataset` arguments
            (``ann_file``, ``data_root``, ``data_prefix``, ``pipeline``...).
    """

    DATASET_NAME = 'voc'
