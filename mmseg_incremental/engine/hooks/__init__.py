from .atomic_checkpoint_hook import AtomicCheckpointHook
from .channels_last_hook import ChannelsLastHook
from .cuda_graph_hook import CudaGraphHook
from .deferred_runtime_info_hook import DeferredRuntimeInfoHook
from .dkd_hook import DKDHook
from .divergence_guard_hook import DivergenceGuardHook
from .experiment_progress_hook import ExperimentProgressHook, StepTimingHook
from .freeze_encoder_hook import FreezeEncoderHook
from .non_blocking_copy_hook import NonBlockingCopyHook
from .preemption_hook import PreemptionHook
from .pseudo_label_hook import PseudoLabelHook
from .val_cudnn_benchmark_hook import ValCudnnBenchmarkHook

__all__ = [
    'AtomicCheckpointHook', 'ChannelsLastHook', 'CudaGraphHook',
    'DeferredRuntimeInfoHook', 'DKDHook', 'DivergenceGuardHook',
    'ExperimentProgressHook', 'FreezeEncoderHook', 'NonBlockingCopyHook',
    'PreemptionHook', 'PseudoLabelHook', 'StepTimingHook',
    'ValCudnnBenchmarkHook'
]
