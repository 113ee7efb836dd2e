"""A decode head's L_CE without host syncs: mmseg's ``loss_by_feat``, same
values.

mmseg 1.2's ``BaseDecodeHead.loss_by_feat`` stops the host three times per
training step on a GPU: ``CrossEntropyLoss`` with ``avg_non_ignore=True``
(the paper configs' L_CE, averaged over the labelled pixels) counts them
with ``.item()``, and ``accuracy`` selects the labelled pixels by boolean
indexing (a ``nonzero`` each, twice). Each sync makes the host wait for the
GPU to finish the encoder before it may launch the next kernel, so the
host's launches of the losses, the backward and the optimizer no longer
overlap the GPU's work -- what CUDA graphs of the encoder
(:mod:`..utils.cuda_graph`) otherwise win. :func:`decode_loss_by_feat` is the
same computation with the count kept on the GPU:

* the cross-entropy gets the labelled-pixel count as its ``avg_factor``
  tensor, which mmseg's loss divides by exactly as by its ``.item()``
  (``loss.sum() / (count + eps)``); other losses are called as mmseg does;
* :func:`accuracy` is mmseg's top-1 ``accuracy`` with masks in place of the
  selection (same value; shape (1,)).

``DeepLabV2Head.loss_by_feat`` is this function, and ``DistillEncoderDecoder``
uses it for every head whose ``loss_by_feat`` is mmseg's own (with PLOP's
pseudo-labels and per-pixel weights too).
"""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.utils import resize
from ..losses.logit_pairs import share_label_logits, upsample_logits


def accuracy(pred: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    """Top-1 pixel accuracy in percent over the pixels not labelled
    ``ignore_index``: mmseg's ``accuracy(pred, target, ignore_index=...)``
    (the same ``eps``), without selecting pixels. The prediction is
    ``max(dim=1)``'s index (the first of tied classes; mmseg's ``topk`` may
    pick any of them on a GPU): mmseg's ``topk`` took 0.58 ms of the GPU's
    5.7 ms per EF+L'_D step at the paper's batch (H200 profile), and on the
    CPU ``topk`` or ``argmax`` over the class dim take 4x as long as
    ``max`` (44 / 38 / 10 ms for logits of 8 x 17 x 128², one thread).

    Args:
        pred (Tensor): Logits (N, C, H, W).
        target (Tensor): Labels (N, H, W).
        ignore_index (int): Label of the pixels left out.

    Returns:
        Tensor: Shape (1,), float32.
    """
    valid = target != ignore_index
    label = pred.max(dim=1)[1]
    correct = ((label == target) & valid).sum().float().reshape(1)
    eps = torch.finfo(torch.float32).eps
    return (correct + eps).mul_(100.0 / (valid.sum().float() + eps))


def ce_avg_factor(loss_decode: nn.Module, seg_label: Tensor,
                  ignore_index: int) -> Optional[Tensor]:
    """The labelled-pixel count, as a tensor, for an mmseg
    ``CrossEntropyLoss`` that would count them with ``.item()`` (softmax,
    mean reduction, ``avg_non_ignore=True``, no class weights); None for
    every other loss (called unchanged)."""
    if (isinstance(loss_decode, CrossEntropyLoss)
            and loss_decode.avg_non_ignore and not loss_decode.use_sigmoid
            and not loss_decode.use_mask and loss_decode.class_weight is None
            and loss_decode.reduction == 'mean'):
        return (seg_label != ignore_index).sum()
    return None


def decode_loss_by_feat(head: BaseDecodeHead,
                        seg_logits: Tensor,
                        seg_label: Tensor,
                        weight: Optional[Tensor] = None) -> dict:
    """mmseg's ``BaseDecodeHead.loss_by_feat`` (mmseg 1.2) on given labels
    (N, H, W) and optional per-pixel weights (N, H, W), multiplied into
    the head's sampler weights if it has a sampler, without host syncs.

    Logits already at the labels' size (:func:`label_logits`) are used as
    they are (mmseg's resize to the same size is the identity).

    Returns:
        dict[str, Tensor]: One entry per ``loss_decode`` name (summed when
        names repeat) and ``acc_seg``.
    """
    loss = dict()
    if seg_logits.shape[-2:] != seg_label.shape[-2:]:
        seg_logits = resize(
            input=seg_logits,
            size=seg_label.shape[-2:],
            mode='bilinear',
            align_corners=head.align_corners)
    if head.sampler is not None:
        seg_weight = head.sampler.sample(seg_logits, seg_label.unsqueeze(1))
        weight = seg_weight if weight is None else seg_weight * weight
    if isinstance(head.loss_decode, nn.ModuleList):
        losses_decode = head.loss_decode
    else:
        losses_decode = [head.loss_decode]
    for loss_decode in losses_decode:
        extra = dict()
        count = ce_avg_factor(loss_decode, seg_label, head.ignore_index)
        if count is not None:
            extra['avg_factor'] = count
        value = loss_decode(
            seg_logits,
            seg_label,
            weight=weight,
            ignore_index=head.ignore_index,
            **extra)
        if loss_decode.loss_name not in loss:
            loss[loss_decode.loss_name] = value
        else:
            loss[loss_decode.loss_name] += value
    loss['acc_seg'] = accuracy(seg_logits, seg_label, head.ignore_index)
    return loss


#: ``loss_by_feat`` implementations that compute what
#: :func:`decode_loss_by_feat` does (see :func:`computes_mmseg_losses`).
_MMSEG_LOSS_BY_FEAT = {BaseDecodeHead.loss_by_feat}


def computes_mmseg_losses(method):
    """Mark a head class's ``loss_by_feat`` as mmseg's losses computed by
    :func:`decode_loss_by_feat` (``DeepLabV2Head``'s)."""
    _MMSEG_LOSS_BY_FEAT.add(method)
    return method


def has_mmseg_loss_by_feat(head: nn.Module) -> bool:
    """Whether ``head.loss_by_feat`` is mmseg's ``BaseDecodeHead`` one or
    one marked by :func:`computes_mmseg_losses`: then
    :func:`decode_loss_by_feat` computes the same losses, also on labels
    other than the samples'."""
    return type(head).loss_by_feat in _MMSEG_LOSS_BY_FEAT


def head_loss_by_feat(head: nn.Module,
                      seg_logits: Tensor,
                      data_samples: list,
                      batch=None) -> dict:
    """``head.loss_by_feat(seg_logits, data_samples)``, through
    :func:`decode_loss_by_feat` where that is the same computation.

    With ``batch`` (a :class:`~..terms.base.DistillBatch` of this
    ``loss()`` call, whose terms read the student's logits at the labels'
    size), those logits come from :func:`label_logits`: upsampled once for
    the decode loss and the terms.
    """
    if not has_mmseg_loss_by_feat(head):
        return head.loss_by_feat(seg_logits, data_samples)
    if batch is None:
        seg_label = head._stack_batch_gt(data_samples).squeeze(1)
    else:
        seg_label = batch_labels(batch)
        seg_logits = label_logits(batch, head.align_corners)
    return decode_loss_by_feat(head, seg_logits, seg_label)


def batch_labels(batch) -> Tensor:
    """The labels (N, H, W) of a :class:`~..terms.base.DistillBatch`'s
    samples, stacked once per ``loss()`` call."""
    return batch.shared(
        'seg_label', lambda: torch.stack(
            [sample.gt_sem_seg.data for sample in batch.data_samples])[:, 0])


def label_logits(batch, align_corners: bool) -> Tensor:
    """The student's logits of a :class:`~..terms.base.DistillBatch`
    bilinearly upsampled to its labels' size in fp32 (autocast off), once
    per ``loss()`` call: the decode loss and every term that reads them
    get the same tensor (with a slot for softmax statistics that MiB's CE
    and KD share, :func:`~..losses.logit_pairs.share_label_logits`).

    The upsampling is :func:`~..losses.logit_pairs.upsample_logits`
    (matrix products on the CPU for small logits: the same weights as
    mmseg's ``resize``, 3x cheaper with its backward).

    Args:
        batch (DistillBatch): The batch (its ``memo`` holds the result).
        align_corners (bool): The decode head's ``align_corners``.

    Returns:
        Tensor: (N, C, H, W) float32 at the labels' size.
    """
    size = tuple(batch_labels(batch).shape[-2:])

    def compute() -> Tensor:
        logits = batch.seg_logits
        with torch.autocast(logits.device.type, enabled=False):
            return share_label_logits(
                upsample_logits(logits.float(), size, align_corners))

    return batch.shared(('label_logits', size, bool(align_corners)), compute)
