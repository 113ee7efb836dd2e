from .hooks import (AtomicCheckpointHook, ExperimentProgressHook,
                    FreezeEncoderHook, PseudoLabelHook)
from .optimizers import AutocastOptimWrapper

__all__ = [
    'AtomicCheckpointHook', 'ExperimentProgressHook', 'FreezeEncoderHook',
    'PseudoLabelHook', 'AutocastOptimWrapper'
]
