from .hooks import (AtomicCheckpointHook, ExperimentProgressHook,
                    FreezeEncoderHook)
from .optimizers import AutocastOptimWrapper

__all__ = [
    'AtomicCheckpointHook', 'ExperimentProgressHook', 'FreezeEncoderHook',
    'AutocastOptimWrapper'
]
