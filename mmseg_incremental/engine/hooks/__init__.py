from .atomic_checkpoint_hook import AtomicCheckpointHook
from .experiment_progress_hook import ExperimentProgressHook
from .freeze_encoder_hook import FreezeEncoderHook

__all__ = [
    'AtomicCheckpointHook', 'ExperimentProgressHook', 'FreezeEncoderHook'
]
