from .atomic_checkpoint_hook import AtomicCheckpointHook
from .freeze_encoder_hook import FreezeEncoderHook

__all__ = ['AtomicCheckpointHook', 'FreezeEncoderHook']
