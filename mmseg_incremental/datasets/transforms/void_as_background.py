"""MiB's training labels: void pixels (255) trained as background (0)."""
from typing import List

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class VoidAsBackground(BaseTransform):
    """Label the void pixels of the training annotation as background.

    MiB trains void as background: ``fcdl94/MiB`` (commit 1c58983),
    ``dataset/voc.py`` l.142-148 sets ``masking_value = 0`` for the training
    set (255 for validation/test) and ``self.inverted_order[255] =
    masking_value``; the target transform of l.150-156 then maps every 255
    to 0, at every step (step 0 included: ``run.py`` l.83-86 builds each
    step's training set through this class). PLOP keeps void ignored
    (``arthurdouillard/CVPR2021_PLOP`` ``dataset/voc.py`` l.182-184:
    ``self.inverted_order[255] = 255``, MiB's lines commented out above
    them, l.174-180). ADE20K's annotations hold no 255 (MiB's
    ``dataset/ade.py`` maps its label 0 instead, our background), so this
    changes nothing there.

    Put it right after ``LoadAnnotations`` (which applies the step's
    incremental label map, :mod:`..incremental_mixin`) in the *training*
    pipeline only; evaluation keeps 255 ignored, as MiB's (masking value
    255 at test time). Pixels that later transforms or the data
    preprocessor pad with 255 (``seg_pad_val``) are no image pixels and
    stay ignored; MiB's ``RandomResizedCrop`` pads none. The experiment's
    ``void_as_background`` setting inserts it (:func:`insert_after_loading`;
    on in MiB's method fragment ``configs/_base_/methods/mib.py``).

    Required keys: ``gt_seg_map``; modified: ``gt_seg_map`` (a new array:
    the loaded one is not written).

    Args:
        void_index (int): The void label. Defaults to 255.
        background_index (int): The label it becomes. Defaults to 0.
    """

    def __init__(self,
                 void_index: int = 255,
                 background_index: int = 0) -> None:
        self.void_index = int(void_index)
        self.background_index = int(background_index)

    def transform(self, results: dict) -> dict:
        if 'gt_seg_map' not in results:
            raise KeyError(f'{type(self).__name__} needs the labels '
                           "(results['gt_seg_map']): put it after "
                           'LoadAnnotations in the training pipeline.')
        seg = np.array(results['gt_seg_map'], copy=True)
        seg[seg == self.void_index] = self.background_index
        results['gt_seg_map'] = seg
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(void_index={self.void_index}, '
                f'background_index={self.background_index})')


def _kind(transform) -> str:
    """A transform config's registered name, scope prefix dropped."""
    kind = transform.get('type') if isinstance(transform, dict) else None
    if not isinstance(kind, str):
        kind = getattr(kind, '__name__', '')
    return kind.split('.')[-1]


def insert_after_loading(pipeline: List[dict]) -> bool:
    """Insert ``dict(type='VoidAsBackground')`` into a training pipeline
    config right after its ``LoadAnnotations``, unless it has one already.

    Returns:
        bool: Whether it was inserted.

    Raises:
        ValueError: The pipeline loads no annotations.
    """
    kinds = [_kind(t) for t in pipeline]
    if 'VoidAsBackground' in kinds:
        return False
    loads = [i for i, k in enumerate(kinds) if k == 'LoadAnnotations']
    if not loads:
        raise ValueError(
            'void_as_background=True needs LoadAnnotations in the training '
            f'pipeline to insert VoidAsBackground after it; got {kinds}.')
    pipeline.insert(loads[0] + 1, dict(type='VoidAsBackground'))
    return True
