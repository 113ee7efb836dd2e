from .dkd_loss import AuxClassifierLoss, MultiLabelBCELoss
from .feature_distill_loss import FeatureDistillLoss
from .output_distill_loss import OutputDistillLoss
from .pod_loss import PODLoss, local_pod
from .unbiased_ce_loss import UnbiasedCrossEntropyLoss
from .unbiased_distill_loss import UnbiasedDistillLoss

__all__ = [
    'OutputDistillLoss', 'FeatureDistillLoss', 'UnbiasedCrossEntropyLoss',
    'UnbiasedDistillLoss', 'PODLoss', 'local_pod', 'MultiLabelBCELoss',
    'AuxClassifierLoss'
]
