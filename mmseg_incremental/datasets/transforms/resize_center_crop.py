"""MiB's and PLOP's evaluation view: short side resized, centre crop."""
from typing import Dict

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ResizeCenterCrop(BaseTransform):
    """Resize the shorter side to ``size``, then crop the centre
    ``size`` x ``size`` -- image (bilinear) and label (nearest) alike.

    MiB and PLOP evaluate this view by default (``--crop_val``, default
    True: fcdl94/MiB ``argparser.py``, arthurdouillard/CVPR2021_PLOP
    ``argparser.py``), built in ``run.py`` ``get_dataset`` as
    ``Resize(size=crop_size)`` + ``CenterCrop(size=crop_size)`` (MiB
    ``run.py`` l.49-55, PLOP ``run.py`` l.50-58). The crop is what is
    evaluated, so ``ori_shape`` becomes the crop's shape: the segmentor
    returns its prediction at that size and ``IoUMetric`` compares it with
    the cropped label. The experiment's ``eval_crop`` setting puts it in
    the validation and test pipelines, right after ``LoadAnnotations``.

    Required keys: ``img``, optionally ``gt_seg_map``. Modified: ``img``,
    ``gt_seg_map``, ``img_shape``, ``ori_shape``.

    Args:
        size (int): The shorter side after resizing, and the crop's side.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f'ResizeCenterCrop got size={size!r}; use an '
                             'int >= 1 (MiB and PLOP: 512).')
        self.size = size

    def _resized_shape(self, h: int, w: int):
        scale = self.size / min(h, w)
        return (max(self.size, int(round(h * scale))),
                max(self.size, int(round(w * scale))))

    def _crop(self, array: np.ndarray) -> np.ndarray:
        h, w = array.shape[:2]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return array[top:top + self.size, left:left + self.size]

    def _image(self, img: np.ndarray) -> np.ndarray:
        new_h, new_w = self._resized_shape(*img.shape[:2])
        if (new_h, new_w) != img.shape[:2]:
            img = mmcv.imresize(img, (new_w, new_h), interpolation='bilinear')
        return self._crop(img)

    def _label(self, label: np.ndarray) -> np.ndarray:
        """Nearest neighbour as PIL's ``Image.NEAREST`` (MiB / PLOP resize
        the label as a PIL image): output pixel j reads input pixel
        ``floor((j + 0.5) * in / out)``."""
        h, w = label.shape[:2]
        new_h, new_w = self._resized_shape(h, w)
        rows = np.minimum(((np.arange(new_h) + 0.5) * h / new_h).astype(int),
                          h - 1)
        cols = np.minimum(((np.arange(new_w) + 0.5) * w / new_w).astype(int),
                          w - 1)
        return self._crop(label[rows[:, None], cols[None, :]])

    def transform(self, results: Dict) -> Dict:
        results['img'] = self._image(results['img'])
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = self._label(results['gt_seg_map'])
        shape = results['img'].shape[:2]
        results['img_shape'] = shape
        results['ori_shape'] = shape
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size})'


def insert_eval_crop(pipeline: list, size: int) -> list:
    """``pipeline`` (a validation/test pipeline) evaluating the
    ``size`` crop: its resizing steps dropped, ``LoadAnnotations`` right
    after the image is loaded, then :class:`ResizeCenterCrop`.

    Raises:
        ValueError: The pipeline has no ``LoadAnnotations``.
    """
    steps = [dict(s) for s in pipeline]
    types = [s.get('type') for s in steps]
    if 'LoadAnnotations' not in types:
        raise ValueError(
            f'eval_crop={size} needs LoadAnnotations in the validation '
            f'pipeline {types} (the label is cropped with the image).')
    if 'ResizeCenterCrop' in types:
        return steps
    resizing = {
        'Resize', 'RandomResize', 'ResizeShortestEdge', 'ResizeToMultiple'
    }
    annotations = steps[types.index('LoadAnnotations')]
    kept = [
        s for s in steps
        if s.get('type') not in resizing and s.get('type') != 'LoadAnnotations'
    ]
    kept_types = [s.get('type') for s in kept]
    at = kept_types.index('LoadImageFromFile') + 1 \
        if 'LoadImageFromFile' in kept_types else 0
    return kept[:at] + [annotations,
                        dict(type='ResizeCenterCrop', size=size)] + kept[at:]
