"""The student's and teacher's intermediate outputs that terms read.

* :func:`request_all_stages`: PLOP's POD reads the four backbone stages;
  a ResNet that returns only its last stage (``out_indices=(3,)``) is
  asked for all of them, and the heads' ``in_index`` re-pointed, so the
  decoder still reads the same stage. ``out_indices`` decides only which
  stage outputs ResNet returns: the parameters, their names and the
  computation are unchanged.
* :func:`head_forward`: the head's own ``forward``, also returning the
  input of its classifier (``cls_seg``), PLOP's "pre_logits", without a
  second forward.
* :func:`upsample_to`: fp32 logits at the labels' size.
"""
import copy
import logging
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from torch import Tensor

from mmseg.models.backbones import ResNet
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType


def _is_resnet(backbone: ConfigType) -> bool:
    kind = backbone.get('type')
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    return isinstance(cls, type) and issubclass(cls, ResNet)


def _remap_in_index(head: OptConfigType, old: Tuple[int, ...],
                    new: Tuple[int, ...]) -> OptConfigType:
    """A copy of a head config (or list) whose ``in_index`` points at the
    same stage in ``new`` as it did in ``old``."""
    if head is None:
        return None
    if isinstance(head, (list, tuple)):
        return [_remap_in_index(h, old, new) for h in head]
    head = copy.deepcopy(head)
    index = head.get('in_index', -1)
    if isinstance(index, (list, tuple)):
        head['in_index'] = [new.index(old[i]) for i in index]
    else:
        head['in_index'] = new.index(old[index])
    return head


def request_all_stages(
    backbone: ConfigType, neck: OptConfigType, decode_head: ConfigType,
    auxiliary_head: OptConfigType
) -> Tuple[ConfigType, ConfigType, OptConfigType, List[int]]:
    """Ask a ResNet for all its stages, the heads reading the same ones.

    Applies to mmseg's ``ResNet`` family (``ResNetV1c``, ``ResNetV1d``,
    ``ResNeSt``, ...) without a neck (a neck consumes the stages by
    position). Other encoders are left as they are: POD then reads what
    they return.

    Returns:
        tuple: The backbone, decode head and auxiliary head configs (copies
        where changed) and the stage indices the encoder returns, or an
        empty list when unknown (not a ResNet).
    """
    if neck is not None or not _is_resnet(backbone):
        return backbone, decode_head, auxiliary_head, []
    num_stages = int(backbone.get('num_stages', 4))
    old = tuple(backbone.get('out_indices', (0, 1, 2, 3)))
    new = tuple(range(num_stages))
    if old == new:
        return backbone, decode_head, auxiliary_head, list(new)
    backbone = copy.deepcopy(backbone)
    backbone['out_indices'] = new
    decode_head = _remap_in_index(decode_head, old, new)
    auxiliary_head = _remap_in_index(auxiliary_head, old, new)
    index = decode_head.get('in_index') if isinstance(decode_head,
                                                      dict) else None
    print_log(
        f'POD reads every backbone stage: out_indices {old} -> {new} for '
        'the student and the teacher (the heads read the same stage; '
        f'decode_head.in_index -> {index}); the weights and checkpoint keys '
        'are unchanged.',
        logger='current',
        level=logging.INFO)
    return backbone, decode_head, auxiliary_head, list(new)


def has_classifier(head: nn.Module) -> bool:
    """Whether ``head`` ends with mmseg's ``cls_seg`` -> ``conv_seg``, so
    that the input of ``cls_seg`` is the decoder's output before the
    classifier (``DeepLabV2Head`` has none: its ASPP is the classifier)."""
    return isinstance(getattr(head, 'conv_seg', None), nn.Module)


def head_forward(head: nn.Module, feats: Sequence[Tensor],
                 capture: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """``head.forward(feats)`` and, with ``capture``, the input of its
    ``cls_seg`` (before dropout), from the same forward.

    The capture shadows ``cls_seg`` by an instance attribute for the
    duration of the call only (no hook stays on the module, so copies of it
    never hold one). None when the head has no ``conv_seg`` or called
    ``cls_seg`` other than once.
    """
    if not capture or not has_classifier(head):
        return head.forward(feats), None
    seen: List[Tensor] = []
    cls_seg = head.cls_seg

    def capturing_cls_seg(feat: Tensor) -> Tensor:
        seen.append(feat)
        return cls_seg(feat)

    head.cls_seg = capturing_cls_seg
    try:
        logits = head.forward(feats)
    finally:
        del head.cls_seg
    return logits, seen[0] if len(seen) == 1 else None


def upsample_to(logits: Tensor, size: Sequence[int],
                align_corners: bool) -> Tensor:
    """fp32 logits bilinearly resized to ``size`` (autocast off)."""
    with torch.autocast(logits.device.type, enabled=False):
        logits = logits.float()
        if tuple(logits.shape[-2:]) == tuple(size):
            return logits
        return resize(
            logits,
            size=tuple(size),
            mode='bilinear',
            align_corners=align_corners)
