from .random_rescale import RandomRescale

__all__ = ['RandomRescale']
