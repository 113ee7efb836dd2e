from .random_rescale import RandomRescale
from .resize_center_crop import ResizeCenterCrop, insert_eval_crop
from .void_as_background import VoidAsBackground, insert_after_loading

__all__ = [
    'RandomRescale', 'ResizeCenterCrop', 'insert_eval_crop',
    'VoidAsBackground', 'insert_after_loading'
]
