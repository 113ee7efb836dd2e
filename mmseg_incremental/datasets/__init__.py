from .ade import IncrementalADE20KDataset
from .class_presence import load_class_presence
from .incremental_mixin import (EVAL_PROTOCOLS, SETTINGS,
                                IncrementalDatasetMixin, incremental_label_map,
                                keep_mask)
from .same_shape_batch_sampler import SameShapeBatchSampler, image_shape
from .transforms import RandomRescale, VoidAsBackground
from .voc import IncrementalVOCDataset

__all__ = [
    'RandomRescale', 'VoidAsBackground', 'IncrementalVOCDataset',
    'IncrementalADE20KDataset', 'IncrementalDatasetMixin',
    'load_class_presence', 'incremental_label_map', 'keep_mask', 'SETTINGS',
    'EVAL_PROTOCOLS', 'SameShapeBatchSampler', 'image_shape'
]
