"""DKD's losses (Baek et al., "Decomposed Knowledge Distillation for
Class-Incremental Semantic Segmentation", NeurIPS 2022).

Facts from the authors' code, ``cvlab-yonsei/DKD`` (commit fb4693f):

* The network's outputs (``models/model.py:41, 67-75``): channel 0 is an
  *auxiliary classifier* ``cls[0]`` (one 1x1 conv) applied to the
  *detached* features; channels 1.. are one sigmoid classifier per class
  (background has none). In this plugin's layout output 0 is that
  auxiliary channel (where mmseg's heads put the background), outputs
  ``1 .. C_old - 1`` the old classes, ``C_old .. C - 1`` the new ones.
* ``models/loss.py:59-90`` (``WBCELoss``) and ``trainer/trainer_voc.py:
  84-85, 121-124, 348-351``: a binary cross-entropy on the **new**
  classes' logits only (``logit[:, -n_new:]``), target 1 where the label
  is the class, 0 elsewhere -- pixels labelled 0 (background) *and 255*
  get target 0 for every class: 255 is not ignored, only skipped when
  the targets are set (``loss.py:76``) --, ``pos_weight`` on the
  positives, ``reduction='none'`` then the mean over (N, H, W) per class
  and the **sum** over the classes (``loss_mbce.sum()``,
  ``trainer_voc.py:128, 374``). :func:`multilabel_bce_loss`.
* ``models/loss.py:110-119`` (``ACLoss``), ``trainer_voc.py:126, 360``:
  the auxiliary channel against target 0, mean over all pixels.
  :func:`aux_classifier_loss`.
* ``models/loss.py:93-107`` (``KDLoss``), ``trainer_voc.py:354-357``: the
  student's old-class logits ``logit[:, 1:n_old + 1]`` against the
  teacher's sigmoid ``logit_old[:, 1:].sigmoid()`` by binary
  cross-entropy with soft targets, mean over (N, H, W) per class, summed.
  :func:`sigmoid_distill_loss`.
* ``models/model.py:77-99`` and ``trainer_voc.py:363-372``: the
  decomposed responses of the class classifiers (``cls[0]`` skipped):
  ``x @ W+`` and ``x @ W-`` with ``W+ = W.where(W > 0, 0)``, ``W- =
  W.where(W < 0, 0)``, no bias, on the classifier's input ``x``
  (``x_pl``, at the features' resolution, not upsampled); the student's
  first ``n_old`` responses are distilled towards the teacher's sigmoid
  as the KD above. :func:`decomposed_responses`.
* Every logit the losses above read is the head's output bilinearly
  upsampled to the input (``model.py:49-52``, ``align_corners=False``);
  the decomposed responses are not (``*_small``, ``model.py:55-58``).

The two decode losses are registered mmseg losses
(:class:`MultiLabelBCELoss`, :class:`AuxClassifierLoss`) that a
``DKDHead`` calls on logits already at the labels' size; the term
``DKDTerm`` calls the functions. Every function computes with autocast
off, fp16/bf16 inputs cast to fp32 (DKD's ran under
``torch.cuda.amp.autocast``, which runs ``binary_cross_entropy_with_logits``
in fp32 too).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS

from .loss_args import check_loss_args


def _fp32(x: Tensor) -> Tensor:
    """``x`` in fp32 if it is in a lower precision (fp64 stays)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def multilabel_bce_loss(logits: Tensor,
                        label: Tensor,
                        num_old_classes: int,
                        pos_weight: float = 1.0) -> Tensor:
    """DKD's ``L_mbce`` on the new classes (``WBCELoss``, ``loss.py:59-90``).

    ``sum_{c = C_old}^{C - 1} mean_{n,h,w} BCE(logits[n, c, h, w],
    [label[n, h, w] == c]; pos_weight)``: every pixel counts, those labelled
    background, an old class or 255 being negatives of every new class
    (DKD sets no target for 0 and 255, ``loss.py:75-78``; its labels of a
    step hold no old class, which DKD's indexing ``c - n_old`` would not
    handle).

    Args:
        logits (Tensor): (N, C, H, W), the labels' size.
        label (Tensor): (N, H, W) output indices (255: ignored elsewhere).
        num_old_classes (int): C_old = |S_{k-1}| with the auxiliary
            channel 0 (1 at step 0: every class is new).
        pos_weight (float): Weight of the positive term (DKD's
            ``pos_weight``: 2 at step 0 and 1 after on VOC,
            ``scripts/voc/overlapped/train_voc_15-1.sh``). Defaults to 1.

    Returns:
        Tensor: The loss, a scalar (0 when there is no new class).
    """
    with torch.autocast(logits.device.type, enabled=False):
        new = _fp32(logits[:, num_old_classes:])
        n, c, h, w = new.shape
        if c == 0:
            return logits.sum() * 0
        classes = torch.arange(
            num_old_classes,
            num_old_classes + c,
            device=label.device,
            dtype=label.dtype)
        target = (label[:, None] == classes[None, :, None, None]).to(new.dtype)
        weight = torch.full((c, 1, 1),
                            float(pos_weight),
                            dtype=new.dtype,
                            device=new.device)
        per_pixel = F.binary_cross_entropy_with_logits(
            new, target, pos_weight=weight, reduction='none')
        # mean over (N, H, W) per class, summed over the classes
        return per_pixel.sum() / (n * h * w)


def aux_classifier_loss(logits: Tensor) -> Tensor:
    """DKD's ``L_ac`` (``ACLoss``, ``loss.py:110-119``): the auxiliary
    channel 0 against target 0, ``mean(-log(1 - sigmoid(logits[:, 0])))``
    over all pixels."""
    with torch.autocast(logits.device.type, enabled=False):
        aux = _fp32(logits[:, :1])
        return F.binary_cross_entropy_with_logits(
            aux, torch.zeros_like(aux), reduction='mean')


def sigmoid_distill_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """DKD's ``KDLoss`` (``loss.py:93-107``) as ``trainer_voc.py:354-372``
    reduces it: ``sum_c mean_{n,h,w} BCE(student[:, c],
    sigmoid(teacher[:, c]))``.

    Args:
        student (Tensor): (N, C', H, W) logits (with grad).
        teacher (Tensor): (N, C', H, W) logits of the same classes.

    Returns:
        Tensor: A scalar (0 for C' = 0).
    """
    with torch.autocast(student.device.type, enabled=False):
        student = _fp32(student)
        n, c, h, w = student.shape
        if c == 0:
            return student.sum() * 0
        target = _fp32(teacher).detach().sigmoid()
        per_pixel = F.binary_cross_entropy_with_logits(
            student, target, reduction='none')
        return per_pixel.sum() / (n * h * w)


def decomposed_responses(features: Tensor,
                         weight: Tensor) -> Tuple[Tensor, Tensor]:
    """DKD's positive and negative responses (``model.py:77-99``): the 1x1
    classifier ``weight`` split into its positive entries (``W.where(W >
    0, 0)``) and its negative ones (``W.where(W < 0, 0)``), each applied to
    ``features`` without the bias.

    Args:
        features (Tensor): (N, D, h, w), the classifier's input.
        weight (Tensor): (K, D, 1, 1) or (K, D): the rows of the classes.

    Returns:
        tuple[Tensor, Tensor]: ``(pos, neg)``, each (N, K, h, w), fp32
        (autocast off).
    """
    with torch.autocast(features.device.type, enabled=False):
        features = _fp32(features)
        weight = _fp32(weight)
        if weight.dim() == 2:
            weight = weight[:, :, None, None]
        zero = weight.new_zeros(())
        pos = torch.where(weight > 0, weight, zero)
        neg = torch.where(weight < 0, weight, zero)
        return F.conv2d(features, pos), F.conv2d(features, neg)


def _check_call(name: str, weight: Optional[Tensor]) -> None:
    if weight is not None:
        raise NotImplementedError(
            f'{name} takes no per-pixel weight (DKD has none); remove the '
            "head's sampler.")


@MODELS.register_module()
class MultiLabelBCELoss(nn.Module):
    """DKD's ``L_mbce`` as a decode head's loss (:func:`multilabel_bce_loss`).

    Called as mmseg calls a decode loss, ``loss(seg_logits, seg_label,
    weight=None, ignore_index=255)``, with the logits already at the
    labels' size (``DKDHead`` upsamples them). The new classes are those
    from ``num_old_classes`` on: 1 at step 0 (all but the auxiliary
    channel); ``DKDTerm`` sets C_old at steps k >= 1 (as MiB's term sets its
    loss's).

    Args:
        pos_weight (float): DKD's ``pos_weight`` (> 0). Defaults to 1.
        loss_weight (float): DKD's ``mbce`` factor. Defaults to 1.
        num_old_classes (int): C_old (outputs not trained by this loss).
            Defaults to 1.
        loss_name (str): Log key. Defaults to ``'loss_mbce'``.
    """

    def __init__(self,
                 pos_weight: float = 1.0,
                 loss_weight: float = 1.0,
                 num_old_classes: int = 1,
                 loss_name: str = 'loss_mbce') -> None:
        super().__init__()
        check_loss_args(type(self).__name__, loss_weight, loss_name)
        if not float(pos_weight) > 0:
            raise ValueError(f'MultiLabelBCELoss got pos_weight={pos_weight!r}'
                             '; use a weight > 0.')
        if int(num_old_classes) < 1:
            raise ValueError('MultiLabelBCELoss needs num_old_classes >= 1 '
                             '(output 0 is the auxiliary classifier); got '
                             f'{num_old_classes}.')
        self.pos_weight = float(pos_weight)
        self.loss_weight = float(loss_weight)
        self.num_old_classes = int(num_old_classes)
        self._loss_name = loss_name

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        _check_call(type(self).__name__, weight)
        return self.loss_weight * multilabel_bce_loss(
            cls_score, label, self.num_old_classes, self.pos_weight)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'pos_weight={self.pos_weight}, loss_weight='
                f'{self.loss_weight}, num_old_classes={self.num_old_classes}')


@MODELS.register_module()
class AuxClassifierLoss(nn.Module):
    """DKD's ``L_ac`` (:func:`aux_classifier_loss`) as a decode head's
    loss: output 0, the auxiliary classifier, pushed towards 0 everywhere.

    Args:
        loss_weight (float): DKD's ``ac`` factor. Defaults to 1.
        loss_name (str): Log key. Defaults to ``'loss_ac'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ac') -> None:
        super().__init__()
        check_loss_args(type(self).__name__, loss_weight, loss_name)
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name

    def forward(self,
                cls_score: Tensor,
                label: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        _check_call(type(self).__name__, weight)
        return self.loss_weight * aux_classifier_loss(cls_score)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
