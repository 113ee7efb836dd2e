from .freeze_encoder_hook import FreezeEncoderHook

__all__ = ['FreezeEncoderHook']
