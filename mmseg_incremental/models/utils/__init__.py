from .classifier_growth import (NEW_CLASS_INITS, grow_classifier_,
                                infer_num_old_classes)

__all__ = ['NEW_CLASS_INITS', 'grow_classifier_', 'infer_num_old_classes']
