from .ade import IncrementalADE20KDataset
from .class_presence import load_class_presence
from .embedded_benchmark import VOC_CLASSES, VOC_PALETTE, generate_benchmark
from .incremental_mixin import (EVAL_PROTOCOLS, SETTINGS,
                                IncrementalDatasetMixin, incremental_label_map,
                                keep_mask)
from .voc import IncrementalVOCDataset

__all__ = [
    'IncrementalVOCDataset', 'IncrementalADE20KDataset',
    'IncrementalDatasetMixin', 'load_class_presence', 'incremental_label_map',
    'keep_mask', 'SETTINGS', 'EVAL_PROTOCOLS', 'generate_benchmark',
    'VOC_CLASSES', 'VOC_PALETTE'
]
