from .atomic_checkpoint_hook import AtomicCheckpointHook
from .experiment_progress_hook import ExperimentProgressHook
from .freeze_encoder_hook import FreezeEncoderHook
from .pseudo_label_hook import PseudoLabelHook

__all__ = [
    'AtomicCheckpointHook', 'ExperimentProgressHook', 'FreezeEncoderHook',
    'PseudoLabelHook'
]
