"""Building and running the frozen teacher M_{k-1}: its config from the
student's, its checkpoint, and its low-precision copy for autocast."""
import copy
import os.path as osp
import re
from typing import Dict

import torch
import torch.nn as nn
from mmengine.runner import CheckpointLoader
from torch import Tensor

from mmseg.utils import ConfigType, OptConfigType

#: Modules whose weights autocast casts to its low-precision dtype.
_AUTOCAST_MODULES = (nn.modules.conv._ConvNd, nn.Linear)


def without_pretrained(cfg: ConfigType) -> ConfigType:
    """A copy of a backbone config that loads no pretrained weights.

    Every weight of M_k comes from M_{k-1}, so an ImageNet/COCO checkpoint
    would be read only to be overwritten (and might not exist any more).
    """
    cfg = copy.deepcopy(cfg)
    if cfg.get('pretrained') is not None:
        cfg['pretrained'] = None
    init_cfg = cfg.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        cfg['init_cfg'] = None
    elif isinstance(init_cfg, (list, tuple)):
        cfg['init_cfg'] = [
            c for c in init_cfg if c.get('type') != 'Pretrained'
        ] or None
    return cfg


def with_num_classes(head: OptConfigType, num_classes: int) -> OptConfigType:
    """A copy of a head config (or list of them) with ``num_classes``."""
    if head is None:
        return None
    if isinstance(head, (list, tuple)):
        return [with_num_classes(h, num_classes) for h in head]
    head = copy.deepcopy(head)
    if head.get('out_channels') not in (None, 1):
        head['out_channels'] = num_classes
    head['num_classes'] = num_classes
    return head


def read_state_dict(filename: str) -> Dict[str, Tensor]:
    """The ``state_dict`` of an mmengine checkpoint, ``module.`` stripped."""
    is_uri = re.match(r'^[a-zA-Z][\w+.-]*://', filename) is not None
    if not is_uri and not osp.isfile(osp.expanduser(filename)):
        raise FileNotFoundError(
            f'teacher_checkpoint {filename!r} does not exist; point '
            'model.teacher_checkpoint at the checkpoint of the previous step '
            '(M_{k-1}), e.g. <work_dir>/step_<k-1>/iter_<n>.pth.')
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise TypeError(f'teacher_checkpoint {filename!r} holds a '
                        f'{type(checkpoint).__name__}, not a dict with a '
                        'state_dict; save it with mmengine.')
    state = checkpoint.get('state_dict', checkpoint)
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def low_precision_copy(teacher: nn.Module, dtype: torch.dtype,
                       channels_last: bool) -> nn.Module:
    """A copy of the frozen teacher whose conv/linear weights are already
    in ``dtype``, which autocast then uses as they are."""
    teacher = copy.deepcopy(teacher)
    for module in teacher.modules():
        if isinstance(module, _AUTOCAST_MODULES):
            module.to(dtype)
    if channels_last:
        teacher.to(memory_format=torch.channels_last)
    return teacher.eval()


def is_channels_last(model: nn.Module) -> bool:
    """Whether ``model``'s first 4-D weight is in the channels-last layout
    (and not also contiguous, as a 1x1 kernel is in both)."""
    for param in model.parameters():
        if param.dim() == 4 and param.shape[-2:] != (1, 1):
            return param.is_contiguous(memory_format=torch.channels_last
                                       ) and not param.is_contiguous()
    return False
