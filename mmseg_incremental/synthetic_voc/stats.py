"""Statistics of a generated split, gathered while its masks are written."""
from typing import Dict

import numpy as np

from .scene import SCENES
from .voc_classes import VOC_CLASSES, VOID


class SplitStats:
    """Counts over the label maps of one split.

    Call :meth:`add` once per image, then :meth:`to_dict`.
    """

    def __init__(self) -> None:
        self.pixels = np.zeros(256, np.int64)
        self.images = np.zeros(256, np.int64)
        self.scenes: Dict[str, int] = dict.fromkeys(SCENES, 0)
        self.num_fg: Dict[str, int] = {}

    def add(self, label: np.ndarray, scene: str) -> None:
        """Count one image's label map (uint8) and scene type."""
        counts = np.bincount(label.ravel(), minlength=256)
        self.pixels += counts
        self.images += counts > 0
        self.scenes[scene] += 1
        k = str(int((counts[1:len(VOC_CLASSES)] > 0).sum()))
        self.num_fg[k] = self.num_fg.get(k, 0) + 1

    def to_dict(self) -> dict:
        """The statistics as plain JSON data.

        Returns:
            dict: ``num_images``; ``image_counts`` and ``pixel_fractions``
            (class name -> images holding the class / fraction of all
            pixels, 6 decimals); ``void_fraction``; ``scene_counts``;
            ``images_by_num_classes`` (number of foreground classes, as a
            string -> images).
        """
        total = float(self.pixels.sum())
        return dict(
            num_images=int(sum(self.scenes.values())),
            image_counts={
                n: int(self.images[c])
                for c, n in enumerate(VOC_CLASSES)
            },
            pixel_fractions={
                n: round(float(self.pixels[c] / total), 6)
                for c, n in enumerate(VOC_CLASSES)
            },
            void_fraction=round(float(self.pixels[VOID] / total), 6),
            scene_counts=dict(self.scenes),
            images_by_num_classes=dict(sorted(self.num_fg.items())))
