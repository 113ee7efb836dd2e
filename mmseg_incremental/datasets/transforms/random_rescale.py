"""Random scaling relative to the image's own size (ILT / DeepLab-v2)."""
from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform, Resize

from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Rescale the image and its label map by a random factor of their size.

    The paper's augmentation (ILT §4, DeepLab-v2's ``image_scaling``): a
    factor ``s ~ U(ratio_range)`` multiplies the image's **own** height and
    width (a 300x400 image becomes about ``300s x 400s``), bilinear for the
    image, nearest for the labels; a crop/pad to ``crop_size`` follows.
    mmcv's ``RandomResize(scale, ratio_range, keep_ratio=True)`` instead
    fits the image into the box ``scale * s``, which rescales every image by
    a different, box-dependent factor.

    Required keys: ``img``; modified: ``img``, ``gt_seg_map`` (and any
    ``seg_fields``), ``img_shape``; added: ``scale``, ``scale_factor``,
    ``keep_ratio``.

    Args:
        ratio_range (tuple[float, float]): The range of ``s``.
            Defaults to (0.5, 1.5).
    """

    def __init__(self, ratio_range: Tuple[float, float] = (0.5, 1.5)) -> None:
        low, high = (float(r) for r in ratio_range)
        if not 0 < low <= high:
            raise ValueError(f'RandomRescale got ratio_range={ratio_range!r};'
                             ' use (min, max) with 0 < min <= max.')
        self.ratio_range = (low, high)

    def transform(self, results: dict) -> dict:
        factor = float(np.random.uniform(*self.ratio_range))
        # keep_ratio=False: the target (round(w*s), round(h*s)) is exact.
        return Resize(scale_factor=factor, keep_ratio=False)(results)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ratio_range={self.ratio_range})'
