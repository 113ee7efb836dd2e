"""The embedded benchmark: a synthetic Pascal VOC dataset made from a seed.

No real multi-class segmentation dataset can be installed offline, so the
project generates one (docs/design.md §7). :func:`generate_benchmark` writes a
real VOC tree (:mod:`.voc_tree`) that mmseg's ``PascalVOCDataset`` loads
unchanged. The 21 VOC classes keep their ids (:mod:`.voc_classes`); every
foreground class has its own shape family, colours and texture, and four pairs
are alike on purpose (:mod:`.appearance`). Images are scenes (indoor, vehicles,
animals; person anywhere) with VOC-like class frequencies (:mod:`.scene`),
painted on textured, cluttered backgrounds (:mod:`.render`, :mod:`.shapes`).

Only numpy and Pillow are used here (no torch, mmcv or mmseg; a test checks
the imports), and the output is byte-identical for a given seed.

.. code:: python

    >>> stats = generate_benchmark('data/embedded_voc')  # seconds
    >>> stats['train']['num_images'], stats['val']['num_images']
    (1500, 300)
"""
from .appearance import APPEARANCES, LOOKALIKES, Appearance
from .generate import GENERATOR_VERSION, generate_benchmark
from .scene import SCENES
from .voc_classes import VOC_CLASSES, VOC_PALETTE, voc_palette
from .voc_tree import mask_paths

__all__ = [
    'generate_benchmark', 'GENERATOR_VERSION', 'VOC_CLASSES', 'VOC_PALETTE',
    'voc_palette', 'Appearance', 'APPEARANCES', 'LOOKALIKES', 'SCENES',
    'mask_paths'
]
