from .deeplabv2_head import DeepLabV2Head
from .dkd_head import DKDHead

__all__ = ['DeepLabV2Head', 'DKDHead']
