from .feature_distill_loss import FeatureDistillLoss
from .output_distill_loss import OutputDistillLoss

__all__ = ['OutputDistillLoss', 'FeatureDistillLoss']
