from .decode_heads import DeepLabV2Head
from .losses import FeatureDistillLoss, OutputDistillLoss
from .segmentors import DistillEncoderDecoder, IncrementalEncoderDecoder
from .terms import (DistillTerm, FeatureDistillTerm, LocalPODTerm,
                    OutputDistillTerm, PseudoLabelTerm, UnbiasedCETerm,
                    UnbiasedKDTerm)
from .utils import NEW_CLASS_INITS, grow_classifier_, infer_num_old_classes

__all__ = [
    'DeepLabV2Head', 'OutputDistillLoss', 'FeatureDistillLoss',
    'IncrementalEncoderDecoder', 'DistillEncoderDecoder', 'DistillTerm',
    'OutputDistillTerm', 'FeatureDistillTerm', 'UnbiasedCETerm',
    'UnbiasedKDTerm', 'LocalPODTerm', 'PseudoLabelTerm', 'NEW_CLASS_INITS',
    'grow_classifier_', 'infer_num_old_classes'
]
