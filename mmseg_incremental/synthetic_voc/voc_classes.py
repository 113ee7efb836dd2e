"""The Pascal VOC class names, colour palette and class frequencies."""
from typing import Dict, Tuple

import numpy as np

# yapf: disable
#: The 21 class names, as mmseg's ``PascalVOCDataset.METAINFO['classes']``.
VOC_CLASSES: Tuple[str, ...] = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
    'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
# yapf: enable

#: The id of ``person``, the class that appears in every scene type.
PERSON = 15

#: The label of void pixels (object borders), ignored by training and eval.
VOID = 255


def voc_palette(num: int = 256) -> np.ndarray:
    """The VOC colour map: the bits of each id spread over R, G and B.

    Bit ``3j + ch`` of the id becomes bit ``7 - j`` of channel ``ch``.

    Args:
        num (int): Number of entries. Defaults to 256.

    Returns:
        np.ndarray: ``(num, 3)`` uint8; entry 255 is (224, 224, 192).
    """
    ids = np.arange(num)
    rgb = np.zeros((num, 3), dtype=np.int64)
    for j in range(8):
        for ch in range(3):
            rgb[:, ch] |= ((ids >> (3 * j + ch)) & 1) << (7 - j)
    return rgb.astype(np.uint8)


#: The 256-entry VOC palette as ``(r, g, b)`` tuples.
VOC_PALETTE: Tuple[Tuple[int, int, int], ...] = tuple(
    tuple(int(x) for x in c) for c in voc_palette())

# yapf: disable
#: Images holding each class in VOC 2012 ``train`` (1,464 images); the
#: generator's class frequencies follow them (person is the most frequent).
VOC_IMAGE_COUNTS: Dict[int, int] = {
    1: 88, 2: 65, 3: 105, 4: 78, 5: 87, 6: 78, 7: 128, 8: 131, 9: 148,
    10: 64, 11: 82, 12: 121, 13: 68, 14: 81, 15: 442, 16: 82, 17: 63,
    18: 93, 19: 83, 20: 84}
# yapf: enable
