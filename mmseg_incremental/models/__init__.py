from .decode_heads import DeepLabV2Head
from .losses import FeatureDistillLoss, OutputDistillLoss
from .segmentors import DistillEncoderDecoder
from .utils import NEW_CLASS_INITS, grow_classifier_, infer_num_old_classes

__all__ = [
    'DeepLabV2Head', 'OutputDistillLoss', 'FeatureDistillLoss',
    'DistillEncoderDecoder', 'NEW_CLASS_INITS', 'grow_classifier_',
    'infer_num_old_classes'
]
