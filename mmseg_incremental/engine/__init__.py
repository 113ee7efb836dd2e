from .hooks import AtomicCheckpointHook, FreezeEncoderHook

__all__ = ['AtomicCheckpointHook', 'FreezeEncoderHook']
