"""DKD's head: any mmseg decode head that ends in a 1x1 ``conv_seg``, read
as DKD's sigmoid classifiers with an auxiliary classifier in output 0.

DKD (Baek et al., NeurIPS 2022; ``cvlab-yonsei/DKD``, commit fb4693f)
changes three things in a DeepLab-v3 head, all of them here:

* ``models/model.py:41, 67-75``: the classifier is ``[1] + classes`` 1x1
  convolutions, ``cls[0]`` an auxiliary classifier applied to
  ``x_pl.detach()`` (its loss trains it alone, never the features), the
  others one output per class (no background output). Here output 0 of
  ``conv_seg`` is ``cls[0]`` (where mmseg's heads put the background) and
  outputs 1.. the classes: :meth:`DKDHead.cls_seg` applies row 0 to the
  detached features and the other rows to the features. The checkpoint
  keys are the wrapped head's own (``decode_head.conv_seg.weight`` with
  |S_k| rows), so classifier growth (:func:`~..utils.grow_classifier_`)
  copies the auxiliary row with the old classes' and M_k loads into the
  stock head as well.
* ``trainer/trainer_voc.py:181-185, 231-237``: inference takes the
  sigmoid of the upsampled logits, the argmax over the classes (outputs
  1..), and background where no class passes 0.5.
  :meth:`DKDHead.predict_by_feat` returns logits whose argmax is that
  prediction -- output 0 replaced by logit(0.5) = 0, the classes' logits
  kept -- so mmseg's ``EncoderDecoder`` (resize, slide windows, argmax)
  predicts as DKD.
* ``trainer_voc.py:121-128``: the step-0 loss is ``L_mbce`` on every class
  plus ``L_ac`` on the auxiliary output; here the head's ``loss_decode``
  (default ``[MultiLabelBCELoss, AuxClassifierLoss]``), on the logits
  upsampled to the labels (``model.py:49-52``).

``DKDHead`` is built from the wrapped head's config plus ``head_type``:

.. code:: python

    decode_head=dict(
        type='DKDHead', head_type='ASPPHead', in_channels=2048, channels=256,
        dilations=(1, 6, 12, 18), num_classes=16,
        loss_decode=[dict(type='MultiLabelBCELoss', pos_weight=2.0),
                     dict(type='AuxClassifierLoss')])

and is an instance of a subclass of both ``DKDHead`` and the wrapped
class (``DKDASPPHead``), so every attribute, parameter name and method of
the wrapped head is there, with ``cls_seg``, ``loss_by_feat`` and
``predict_by_feat`` DKD's.
"""
import math
import sys
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from ..losses.logit_pairs import upsample_logits
from .loss_by_feat import accuracy

#: The step-0 losses of DKD (``configs/config_voc.json:75-82``: mbce 1,
#: ac 1; ``pos_weight`` 1 in the json, 2 at step 0 in the VOC scripts).
DKD_LOSSES = (dict(type='MultiLabelBCELoss', pos_weight=1.0, loss_weight=1.0),
              dict(type='AuxClassifierLoss', loss_weight=1.0))

#: The wrapped head class -> its DKD subclass (made once per class).
_SUBCLASSES: Dict[type, type] = {}


def _head_class(head_type) -> type:
    """The registered mmseg decode head ``head_type`` names."""
    if head_type is None:
        raise TypeError("DKDHead needs head_type, the mmseg decode head it "
                        "wraps (e.g. head_type='ASPPHead').")
    cls = MODELS.get(head_type) if isinstance(head_type, str) else head_type
    if not (isinstance(cls, type) and issubclass(cls, BaseDecodeHead)):
        raise TypeError(f'DKDHead head_type={head_type!r} is not a '
                        "registered mmseg decode head (e.g. 'ASPPHead', "
                        "'FCNHead', 'DepthwiseSeparableASPPHead').")
    if issubclass(cls, DKDHead):
        raise TypeError(f'DKDHead head_type={head_type!r} is a DKDHead '
                        'already.')
    return cls


def dkd_head_class(head_type) -> type:
    """The subclass of ``DKDHead`` and of the head ``head_type`` names.

    It is made once per wrapped class and published in this module under
    its name (``DKDASPPHead``) so that instances pickle by reference.
    """
    inner = _head_class(head_type)
    if inner not in _SUBCLASSES:
        module = sys.modules[__name__]
        name = f'DKD{inner.__name__}'
        while getattr(module, name, None) is not None:
            name += '_'
        sub = type(inner)(
            name, (DKDHead, inner), {
                '__module__': __name__,
                '__qualname__': name,
                '__doc__': f'DKDHead on {inner.__module__}.{inner.__name__}.'
            })
        setattr(module, name, sub)
        _SUBCLASSES[inner] = sub
    return _SUBCLASSES[inner]


def _check_losses(loss_decode) -> None:
    """Refuse a softmax cross-entropy (e.g. merged in from the wrapped
    head's base config): DKD's outputs are sigmoids."""
    cfgs = loss_decode if isinstance(loss_decode, (list, tuple)) else \
        [loss_decode]
    for cfg in cfgs:
        kind = cfg.get('type') if isinstance(cfg, dict) else None
        name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
        if name.split('.')[-1] == 'CrossEntropyLoss' and \
                not cfg.get('use_sigmoid', False):
            raise ValueError(
                'DKDHead got a softmax CrossEntropyLoss as loss_decode; DKD '
                'trains sigmoid classifiers: set loss_decode=[dict(type='
                "'MultiLabelBCELoss', pos_weight=...), dict(type="
                "'AuxClassifierLoss')] (the default when none is given).")


@MODELS.register_module()
class DKDHead(BaseDecodeHead):
    """DKD's head on any mmseg decode head that ends in ``cls_seg`` ->
    a 1x1 ``conv_seg`` (see the module docstring).

    Output 0 is DKD's auxiliary classifier (on detached features), outputs
    ``1 .. num_classes - 1`` the classes' sigmoid classifiers.

    Args:
        head_type (str | type): The wrapped mmseg decode head (a registered
            name such as ``'ASPPHead'``, or the class).
        score_threshold (float): A pixel is background unless some class's
            sigmoid exceeds it (DKD: 0.5). Defaults to 0.5.
        **kwargs: The wrapped head's arguments (``in_channels``,
            ``channels``, ``num_classes`` = |S_k| with the auxiliary
            output, ``align_corners``...). ``loss_decode`` defaults to
            DKD's step-0 losses (:data:`DKD_LOSSES`); a softmax
            ``CrossEntropyLoss`` is refused.
    """

    def __new__(cls, *args, **kwargs):
        if cls is not DKDHead:
            return super().__new__(cls)
        return super().__new__(dkd_head_class(kwargs.get('head_type')))

    def __init__(self,
                 head_type,
                 score_threshold: float = 0.5,
                 **kwargs) -> None:
        kwargs.setdefault('loss_decode', [dict(c) for c in DKD_LOSSES])
        _check_losses(kwargs['loss_decode'])
        super().__init__(**kwargs)
        name = type(self).__name__
        conv = getattr(self, 'conv_seg', None)
        if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (1, 1) \
                or conv.stride != (1, 1) or conv.padding != (0, 0) \
                or conv.groups != 1:
            raise TypeError(
                f'{name}: DKD reads the classifier as 1x1 convolutions; '
                f'{head_type!r} does not end in a 1x1 conv_seg '
                "(DeepLabV2Head's classifier is its ASPP). Use a head such "
                "as 'ASPPHead' or 'FCNHead'.")
        if self.out_channels != self.num_classes or self.num_classes < 2:
            raise ValueError(
                f'{name} needs out_channels = num_classes >= 2 (the '
                'auxiliary output and at least one class); got '
                f'out_channels={self.out_channels}, '
                f'num_classes={self.num_classes}.')
        if self.sampler is not None:
            raise ValueError(f'{name} takes no pixel sampler (DKD has '
                             'none).')
        if not 0.0 < float(score_threshold) < 1.0:
            raise ValueError(f'{name} score_threshold={score_threshold!r} '
                             'must lie in (0, 1).')
        self.head_type = head_type if isinstance(head_type, str) else \
            head_type.__name__
        self.score_threshold = float(score_threshold)
        # (C_old, weight row, bias row) set by DKDTerm at steps k >= 1:
        # re-applied by init_weights(), which runs before the segmentor
        # copies M_{k-1}'s rows (a plain attribute: not in the state dict).
        self._new_class_init: Optional[Tuple[int, Tensor,
                                             Optional[Tensor]]] = None

    # --- forward -------------------------------------------------------------
    def cls_seg(self, feat: Tensor) -> Tensor:
        """DKD's classifiers: output 0 (the auxiliary classifier ``cls[0]``)
        on the detached features, the others on the features
        (``models/model.py:67-75``), after the head's dropout if any."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        weight, bias = self.conv_seg.weight, self.conv_seg.bias
        aux = F.conv2d(feat.detach(), weight[:1],
                       None if bias is None else bias[:1])
        classes = F.conv2d(feat, weight[1:],
                           None if bias is None else bias[1:])
        return torch.cat([aux, classes], dim=1)

    def decision_logits(self, seg_logits: Tensor) -> Tensor:
        """Logits whose argmax over dim 1 is DKD's prediction: output 0
        (the auxiliary classifier, never predicted) replaced by
        logit(``score_threshold``), the classes' logits kept. A class wins
        where its sigmoid is the largest and exceeds the threshold; ties
        with it go to the background, as DKD's ``> 0.5``
        (``trainer_voc.py:181-185``)."""
        t = self.score_threshold
        background = seg_logits.new_full(seg_logits[:, :1].shape,
                                         math.log(t / (1.0 - t)))
        return torch.cat([background, seg_logits[:, 1:]], dim=1)

    def predict_by_feat(self, seg_logits: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """The wrapped head's ``predict_by_feat`` (logits resized to the
        input) turned into :meth:`decision_logits`: DKD upsamples the
        logits before its sigmoid (``model.py:49-52``), and mmseg's
        ``EncoderDecoder`` takes their argmax."""
        return self.decision_logits(super().predict_by_feat(
            seg_logits, batch_img_metas))

    # --- losses --------------------------------------------------------------
    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """``loss_decode`` on the logits bilinearly upsampled to the labels
        (fp32), and ``acc_seg`` of DKD's prediction."""
        seg_label = self._stack_batch_gt(batch_data_samples)[:, 0]
        with torch.autocast(seg_logits.device.type, enabled=False):
            logits = upsample_logits(seg_logits.float(), seg_label.shape[-2:],
                                     self.align_corners)
        return self.loss_by_labels(logits, seg_label)

    def loss_by_labels(self, logits: Tensor, seg_label: Tensor) -> dict:
        """``loss_decode`` (each called as mmseg calls a decode loss) and
        ``acc_seg`` on logits already at the labels' size (N, C, H, W) and
        labels (N, H, W)."""
        losses = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        out: Dict[str, Tensor] = {}
        for loss in losses:
            value = loss(logits, seg_label, ignore_index=self.ignore_index)
            out[loss.loss_name] = value if loss.loss_name not in out else \
                out[loss.loss_name] + value
        out['acc_seg'] = accuracy(
            self.decision_logits(logits.detach()), seg_label,
            self.ignore_index)
        return out

    # --- new classes (steps k >= 1) -----------------------------------------
    def set_new_class_init(self, num_old_classes: int, weight: Tensor,
                           bias: Optional[Tensor]) -> None:
        """Make the rows ``num_old_classes ..`` of ``conv_seg`` copies of
        ``weight``/``bias`` (one row: DKD's auxiliary classifier of
        M_{k-1}, ``model.py:110-115``), now and after every
        :meth:`init_weights` (which the segmentor follows by copying
        M_{k-1}'s rows ``< num_old_classes``)."""
        weight = weight.detach().reshape(self.conv_seg.weight.shape[1:])
        if bias is not None:
            bias = bias.detach().reshape(())
        self._new_class_init = (int(num_old_classes), weight.clone().cpu(),
                                None if bias is None else bias.clone().cpu())
        self._apply_new_class_init()

    @torch.no_grad()
    def _apply_new_class_init(self) -> None:
        if self._new_class_init is None:
            return
        old, weight, bias = self._new_class_init
        self.conv_seg.weight[old:].copy_(
            weight.expand_as(self.conv_seg.weight[old:]))
        if bias is not None and self.conv_seg.bias is not None:
            self.conv_seg.bias[old:].copy_(
                bias.expand_as(self.conv_seg.bias[old:]))

    def init_weights(self) -> None:
        super().init_weights()
        self._apply_new_class_init()

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, head_type={self.head_type}, '
                f'score_threshold={self.score_threshold}')


__all__ = ['DKDHead', 'DKD_LOSSES', 'dkd_head_class']
