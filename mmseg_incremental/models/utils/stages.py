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
* :class:`PreActivationCapture`: the stage outputs *before* their last
  activation (PLOP's POD inputs), from the same forward.
* :func:`upsample_to`: fp32 logits at the labels' size.
"""
import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple

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


def last_blocks(backbone: nn.Module) -> Optional[List[nn.Module]]:
    """The last residual block of each stage that ``backbone`` returns, in
    the order of its outputs; None unless it is mmseg's ``ResNet`` family
    (whose ``BasicBlock``/``Bottleneck`` end with ``out = self.relu(out)``
    after the residual add)."""
    if not isinstance(backbone, ResNet):
        return None
    layers = [getattr(backbone, name) for name in backbone.res_layers]
    return [layers[i][-1] for i in backbone.out_indices]


#: Whether the bypass of an instance-level ``forward`` was logged.
_BYPASS_LOGGED = [False]


class PreActivationCapture:
    """The stage outputs of a ResNet *before* their last activation, from
    the forward that runs inside the ``with`` block.

    PLOP's residual block returns ``(act, x)``, the stage output after and
    before its activation (arthurdouillard/CVPR2021_PLOP, commit 4b4a060,
    ``modules/residual.py`` l.125-138: ``x = self.convs(x) + residual``,
    ``act = leaky_relu(x, inplace=not self._last)``, ``return act, x`` for
    the last block of a stage); ``models/resnet.py`` l.126-139 collects
    the second of each of the four stages as ``attentions``,
    ``segmentation_module.py`` l.311 hands them to POD, which squares them
    (``train.py``, ``features_distillation``): negative values count. mmseg's
    ``BasicBlock``/``Bottleneck`` end with ``out = self.relu(out)`` after
    the residual add; that call's input is this stage output.

    Nothing is computed twice. Inside the block, the last block of each
    returned stage (:func:`last_blocks`) gets three hooks: a forward
    pre-hook on its ``relu`` that keeps the input of the latest call (the
    block also calls ``relu`` on its inner convolutions: the latest call
    when the block returns is its final one), a forward hook on ``relu``
    that keeps that call's output, and a forward hook on the block that
    takes the kept input once the block returned exactly that output (else
    a ``RuntimeError``: a block that does not end with its ``relu``). The
    ``relu`` runs out of place inside the block (``inplace`` is restored
    after it), so its input is not overwritten, as PLOP's last block
    (``inplace=not self._last``): one more tensor per stage, no copy.
    Leaving the block removes every hook and restores ``inplace``; the
    captured tensors belong to this object only (none stays on a module,
    nothing leaks into the next iteration, copies of the module never
    hold a hook). Gradients flow through the captured tensors as through
    the stage outputs; under ``torch.no_grad`` (the teacher) they have
    none.

    A module whose ``forward`` is replaced on the instance (a CUDA graph
    replay, ``cuda_graph=True``) runs its own class's ``forward`` for the
    call, so that its blocks run (logged once).

    Args:
        backbone (nn.Module): The backbone about to run.
        enabled (bool): Capture; False: do nothing. Defaults to True.

    Attributes:
        stages (list[Tensor] | None): After the ``with`` block, one tensor
            per returned stage; None when disabled or when ``backbone`` is
            not mmseg's ResNet family (:func:`last_blocks`).
    """

    def __init__(self, backbone: nn.Module, enabled: bool = True) -> None:
        self.backbone = backbone
        self.blocks = last_blocks(backbone) if enabled else None
        self.stages: Optional[List[Tensor]] = None
        self._handles: list = []
        self._inplace: List[Tuple[nn.Module, bool]] = []
        self._forward = None
        self._found: Optional[List[Optional[Tensor]]] = None

    def __enter__(self) -> 'PreActivationCapture':
        if self.blocks is None:
            return self
        found: List[Optional[Tensor]] = [None] * len(self.blocks)
        seen_in: Dict[int, Tensor] = {}
        seen_out: Dict[int, Tensor] = {}
        for i, block in enumerate(self.blocks):
            act = block.relu

            def keep_input(_, args, i=i):
                seen_in[i] = args[0]

            def keep_output(_, args, output, i=i):
                seen_out[i] = output

            def take(_, args, output, i=i, block=block):
                if i not in seen_out or output is not seen_out[i]:
                    raise RuntimeError(
                        f'{type(block).__name__} did not return the output '
                        'of its last relu call; its stage output before '
                        'the activation is unknown (use '
                        "pod_inputs='post_relu').")
                found[i] = seen_in.pop(i)
                seen_out.pop(i)

            self._handles += [
                act.register_forward_pre_hook(keep_input),
                act.register_forward_hook(keep_output),
                block.register_forward_hook(take)
            ]
            if getattr(act, 'inplace', False):
                self._inplace.append((act, True))
                act.inplace = False
        self._found = found
        self._forward = self.backbone.__dict__.pop('forward', None)
        if self._forward is not None and not _BYPASS_LOGGED[0]:
            _BYPASS_LOGGED[0] = True
            print_log(
                f'{type(self.backbone).__name__}: the stage outputs before '
                'their last activation need its blocks to run; its forward '
                f'({type(self._forward).__name__}, e.g. a CUDA graph) is '
                'bypassed while they are captured.',
                logger='current',
                level=logging.WARNING)
        return self

    def __exit__(self, *exc) -> None:
        if self.blocks is None:
            return
        for handle in self._handles:
            handle.remove()
        for act, inplace in self._inplace:
            act.inplace = inplace
        if self._forward is not None:
            self.backbone.__dict__['forward'] = self._forward
        self._handles, self._inplace, self._forward = [], [], None
        found, self._found = self._found, None
        if exc[0] is None:
            if any(t is None for t in found):
                raise RuntimeError(
                    f'{type(self.backbone).__name__} ran without the last '
                    'block of every returned stage; its stage outputs '
                    'before the last activation were not captured.')
            self.stages = found


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
