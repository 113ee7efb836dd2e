from .hooks import (AtomicCheckpointHook, ExperimentProgressHook,
                    FreezeEncoderHook)

__all__ = [
    'AtomicCheckpointHook', 'ExperimentProgressHook', 'FreezeEncoderHook'
]
