"""Writing and checking a Pascal VOC tree, as mmseg's VOC dataset reads it.

.. code:: text

    root/
      JPEGImages/<id>.jpg               RGB images
      SegmentationClass/<id>.png        'P'-mode PNGs, VOC palette, ids
                                        0..20 and a 255 (void) border band
      ImageSets/Segmentation/train.txt  image ids, one per line
      ImageSets/Segmentation/val.txt
      benchmark.json                    manifest: parameters and statistics
"""
import json
import os
import os.path as osp
from typing import List, Optional

import numpy as np
from PIL import Image

from .voc_classes import voc_palette

SPLITS = ('train', 'val')
MANIFEST = 'benchmark.json'
#: The manifest's ``format``: a ``benchmark.json`` of anything else is not
#: taken for an embedded benchmark.
FORMAT = 'mmseg_incremental.embedded_benchmark'
IMAGE_DIR = 'JPEGImages'
MASK_DIR = 'SegmentationClass'
LIST_DIR = osp.join('ImageSets', 'Segmentation')


def image_ids(split: str, num: int) -> List[str]:
    """The ids of a split: ``<split>_000000``, ``<split>_000001``, ..."""
    return [f'{split}_{i:06d}' for i in range(num)]


def make_tree(root: str) -> None:
    """Create the (empty) folders of a VOC tree under ``root``."""
    for sub in (IMAGE_DIR, MASK_DIR, LIST_DIR):
        os.makedirs(osp.join(root, sub), exist_ok=True)


def write_sample(root: str, img_id: str, image: np.ndarray,
                 label: np.ndarray) -> None:
    """Write one image (JPEG, quality 90, no chroma subsampling) and mask.

    Args:
        root (str): The tree's root.
        img_id (str): The image id (file name without extension).
        image (np.ndarray): uint8 RGB image (H, W, 3).
        label (np.ndarray): uint8 label map (H, W); saved as a palette PNG
            with the VOC palette, as the real ``SegmentationClass``.
    """
    Image.fromarray(image).save(
        osp.join(root, IMAGE_DIR, f'{img_id}.jpg'), quality=90, subsampling=0)
    mask = Image.fromarray(label)
    mask.putpalette(voc_palette().tobytes())
    mask.save(osp.join(root, MASK_DIR, f'{img_id}.png'))


def write_split_list(root: str, split: str, ids: List[str]) -> None:
    """Write ``ImageSets/Segmentation/<split>.txt``."""
    with open(osp.join(root, LIST_DIR, f'{split}.txt'), 'w') as f:
        f.write(''.join(f'{i}\n' for i in ids))


def split_is_complete(root: str, split: str, ids: List[str]) -> bool:
    """Whether the split lists exactly ``ids`` and all their files exist."""
    path = osp.join(root, LIST_DIR, f'{split}.txt')
    if not osp.isfile(path):
        return False
    with open(path) as f:
        if f.read().split() != ids:
            return False
    return all(
        osp.isfile(osp.join(root, IMAGE_DIR, f'{i}.jpg'))
        and osp.isfile(osp.join(root, MASK_DIR, f'{i}.png')) for i in ids)


def mask_paths(root: str, split: str) -> List[str]:
    """The mask files of a split, in the order of its list."""
    with open(osp.join(root, LIST_DIR, f'{split}.txt')) as f:
        return [osp.join(root, MASK_DIR, f'{i}.png') for i in f.read().split()]


def read_manifest(root: str) -> Optional[dict]:
    """The manifest of ``root``; None when there is none or not ours.

    Raises:
        RuntimeError: ``benchmark.json`` exists but is not valid JSON.
    """
    path = osp.join(root, MANIFEST)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        raise RuntimeError(
            f'{path} is not a readable embedded-benchmark manifest ({err}); '
            'delete the directory or pass overwrite=True.') from err
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        return None
    return manifest


def write_manifest(root: str, manifest: dict) -> None:
    """Write ``benchmark.json`` (indented, with ``format`` first)."""
    with open(osp.join(root, MANIFEST), 'w') as f:
        json.dump(dict(format=FORMAT, **manifest), f, indent=2)
        f.write('\n')
