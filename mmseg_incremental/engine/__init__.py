from .hooks import (AtomicCheckpointHook, ChannelsLastHook, CudaGraphHook,
                    DeferredRuntimeInfoHook, ExperimentProgressHook,
                    FreezeEncoderHook, NonBlockingCopyHook, PseudoLabelHook,
                    StepTimingHook, ValCudnnBenchmarkHook)
from .optimizers import AutocastOptimWrapper

__all__ = [
    'AtomicCheckpointHook', 'ChannelsLastHook', 'CudaGraphHook',
    'DeferredRuntimeInfoHook', 'ExperimentProgressHook', 'FreezeEncoderHook',
    'NonBlockingCopyHook', 'PseudoLabelHook', 'StepTimingHook',
    'ValCudnnBenchmarkHook', 'AutocastOptimWrapper'
]
