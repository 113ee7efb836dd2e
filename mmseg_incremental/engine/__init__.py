from .hooks import FreezeEncoderHook

__all__ = ['FreezeEncoderHook']
