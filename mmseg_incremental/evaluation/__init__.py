# Copyright (c) OpenMMLab. All rights reserved.
from .incremental_iou_metric import IncrementalIoUMetric, check_class_steps

__all__ = ['IncrementalIoUMetric', 'check_class_steps']
