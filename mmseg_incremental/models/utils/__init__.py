from .classifier_growth import (NEW_CLASS_INITS, grow_classifier_,
                                infer_num_old_classes)
from .pseudo_label import (plop_entropy, plop_entropy_thresholds,
                           plop_max_entropy, plop_pseudo_label)

__all__ = [
    'NEW_CLASS_INITS', 'grow_classifier_', 'infer_num_old_classes',
    'plop_entropy', 'plop_entropy_thresholds', 'plop_max_entropy',
    'plop_pseudo_label'
]
