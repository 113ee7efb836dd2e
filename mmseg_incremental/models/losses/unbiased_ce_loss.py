"""MiB's unbiased cross-entropy (Cermelli et al., CVPR 2020, Eq. 4).

Facts taken from the authors' code, ``fcdl94/MiB`` (commit 1c58983):

- ``utils/loss.py``, ``UnbiasedCrossEntropy``: the background channel gets
  ``logsumexp(logits[:, 0:old_cl]) - logsumexp(logits)`` (background and
  every old class), each new class ``c >= old_cl`` gets
  ``logits[:, c] - logsumexp(logits)``; labels ``< old_cl`` become 0; then
  ``F.nll_loss(..., ignore_index=255)``.
- ``train.py``: the criterion is built with ``reduction='none'`` and the
  pixel losses are then averaged with ``loss.mean()``, i.e. over **all**
  pixels, ignored ones counting as 0. MiB's training labels hold no
  ignored pixel, though: ``dataset/voc.py`` l.142-156 maps void (255) to
  background in training (``masking_value = 0``, ``inverted_order[255]
  = masking_value``), and its random-resized crop pads nothing; so that
  mean is also the mean over the non-ignored pixels. This module averages
  over the non-ignored pixels (the paper's Eq. 4, as
  ``F.nll_loss(reduction='mean')`` would): the same value on MiB's
  labels, which ``void_as_background`` (on in MiB's method fragment,
  :class:`~mmseg_incremental.datasets.transforms.VoidAsBackground`)
  reproduces; pixels still ignored here (void with the setting off,
  padding of the data preprocessor) are left out of the mean rather
  than counted as 0.
- ``train.py``: the unbiased CE is used only from step 1 (``old_classes !=
  0``); step 0 uses the plain cross-entropy (here: ``num_old_classes`` 0
  or 1).
- ``segmentation_module.py``: the logits are bilinearly upsampled to the
  input size before every loss, so MiB computes it at the labels'
  resolution.

In mmseg this loss is the decode head's ``loss_decode`` at steps k >= 1:
``DistillEncoderDecoder(decode_loss=dict(type='UnbiasedCrossEntropyLoss'))``
installs it in the student's head and sets its ``num_old_classes``; the
head's ``loss_by_feat`` then calls it as any mmseg loss,
``loss(seg_logits, seg_label, weight=None, ignore_index=...)``, with the
logits already upsampled to the labels (bilinear, the head's
``align_corners``), as MiB does.
"""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor
from torch.autograd.function import once_differentiable

from mmseg.registry import MODELS

from .logit_pairs import OWN_GRADIENT, set_pass_through, split_softmax
from .loss_args import check_loss_args


@MODELS.register_module()
class UnbiasedCrossEntropyLoss(nn.Module):
    """MiB's unbiased cross-entropy ``l_ce`` (Eq. 4).

    At step t the model scores C = |Y^t| outputs: the background (0), the
    old classes ``1 .. C_old - 1`` (C_old = |Y^{t-1}|, background included)
    and the new classes ``C_old .. C - 1`` of C^t. The current labels only
    know the background and C^t, so a pixel labelled background may be an
    old class; MiB therefore scores it with the probability of "background
    or any old class":

    ``q~(i, 0) = sum_{k in Y^{t-1}} q(i, k)`` and ``q~(i, c) = q(i, c)`` for
    ``c in C^t``, with ``q = softmax(logits)`` over all C outputs; i.e.
    ``log q~(i, 0) = logsumexp(logits[:C_old]) - logsumexp(logits)``.

    ``l_ce = -1/|I| sum_{i in I} log q~(i, y_i)``, where labels of old
    classes (``0 < y < C_old``) count as background, and I holds the pixels
    whose label is not ``ignore_index`` (MiB's code divides by all pixels,
    of which none is ignored in its training labels: see the module
    docstring). With ``num_old_classes`` 0 or 1 this is the
    ordinary cross-entropy (MiB's step 0). When no pixel is valid the loss
    is 0, still attached to the graph.

    The logits and the labels must have the same spatial size: resizing
    (MiB upsamples the logits bilinearly to the labels) is the caller's job
    (mmseg's ``BaseDecodeHead.loss_by_feat`` does it). The loss computes
    in fp32 with autocast off inside (bf16/fp16 logits are cast up).

    Args:
        loss_weight (float): Weight of the loss, >= 0. Defaults to 1.0.
        ignore_index (int): The label of ignored pixels. Defaults to 255.
        loss_name (str): Log key; must start with ``loss_`` so that
            mmengine's ``parse_losses`` back-propagates it. Defaults to
            ``'loss_unbiased_ce'``.
        num_old_classes (int, optional): C_old, used when :meth:`forward`
            gets none (mmseg's call convention has no such argument;
            ``DistillEncoderDecoder`` sets it). Defaults to None.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 ignore_index: int = 255,
                 loss_name: str = 'loss_unbiased_ce',
                 num_old_classes: Optional[int] = None) -> None:
        super().__init__()
        check_loss_args('UnbiasedCrossEntropyLoss', loss_weight, loss_name)
        self.loss_weight = float(loss_weight)
        self.ignore_index = int(ignore_index)
        self._loss_name = loss_name
        self.num_old_classes = (None if num_old_classes is None else
                                int(num_old_classes))

    def forward(self,
                logits: Tensor,
                seg_label: Tensor,
                num_old_classes: Optional[int] = None,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None) -> Tensor:
        """Compute ``loss_weight * l_ce``.

        Args:
            logits (Tensor): The current model's logits, shape (N, C, H, W).
            seg_label (Tensor): Labels (output indices, ``ignore_index`` =
                ignore), shape (N, H, W) or (N, 1, H, W), the logits' size.
            num_old_classes (int, optional): C_old = |Y^{t-1}|, background
                included; outputs ``[0, C_old)`` form the background. 0 or
                1 gives the plain cross-entropy. Defaults to the
                constructor's ``num_old_classes``.
            weight (Tensor, optional): Per-pixel weights (N, H, W) (mmseg's
                ``seg_weight``), multiplying each pixel's term; the mean
                still runs over the non-ignored pixels. Defaults to None.
            ignore_index (int, optional): The label of ignored pixels
                (mmseg's heads pass theirs). Defaults to the constructor's.

        Returns:
            Tensor: The weighted loss, a scalar.
        """
        if num_old_classes is None:
            num_old_classes = self.num_old_classes
        if num_old_classes is None:
            raise ValueError(
                'UnbiasedCrossEntropyLoss needs num_old_classes (C_old): '
                'pass it to forward() or to the constructor (as '
                'DistillEncoderDecoder(decode_loss=...) does).')
        ignore_index = self.ignore_index if ignore_index is None else int(
            ignore_index)
        if logits.dim() != 4:
            raise ValueError('UnbiasedCrossEntropyLoss expects logits of '
                             f'shape (N, C, H, W); got {tuple(logits.shape)}.')
        if seg_label.dim() == 4 and seg_label.shape[1] == 1:
            seg_label = seg_label[:, 0]
        if (seg_label.dim() != 3 or seg_label.shape[0] != logits.shape[0]
                or seg_label.shape[1:] != logits.shape[2:]):
            raise ValueError(
                'UnbiasedCrossEntropyLoss needs labels (N, H, W) at the '
                f'logits\' size; got logits {tuple(logits.shape)}, labels '
                f'{tuple(seg_label.shape)} (resize the logits first, as MiB '
                'does).')
        num_classes = logits.shape[1]
        num_old = max(int(num_old_classes), 1)
        if num_old > num_classes:
            raise ValueError(f'UnbiasedCrossEntropyLoss got num_old_classes='
                             f'{num_old_classes} > {num_classes} outputs.')
        if weight is not None and weight.shape != seg_label.shape:
            raise ValueError('UnbiasedCrossEntropyLoss needs a per-pixel '
                             f'weight of shape {tuple(seg_label.shape)}; got '
                             f'{tuple(weight.shape)}.')
        # fp32 under mixed precision (bf16/fp16 logits are cast up).
        with torch.autocast(logits.device.type, enabled=False):
            return self._forward_fp32(logits.float(), seg_label, num_old,
                                      weight, ignore_index)

    def _forward_fp32(self, logits: Tensor, seg_label: Tensor, num_old: int,
                      weight: Optional[Tensor], ignore_index: int) -> Tensor:
        """The body of :meth:`forward` on checked fp32 logits."""
        seg_label = seg_label.long()
        valid = seg_label != ignore_index
        is_new = valid & (seg_label >= num_old)
        # The logit gathered for a pixel of a new class (0 elsewhere).
        target = torch.where(is_new, seg_label, torch.zeros_like(seg_label))
        if weight is not None:
            weight = weight.to(logits.dtype)
        loss, alias = _UnbiasedCE.apply(logits, target, valid, is_new, weight,
                                        num_old)
        # Shared logits (MiB's KD reads them next): the KD takes them
        # through this loss, whose backward adds into the KD's gradient.
        set_pass_through(logits, alias)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """str: The log key of this term (starts with ``loss_``)."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, '
                f'ignore_index={self.ignore_index}, '
                f'num_old_classes={self.num_old_classes}')


class _UnbiasedCE(torch.autograd.Function):
    """``l_ce`` of fp32 logits with a hand-written backward.

    Forward: the softmax statistics of the logits split at C_old
    (:func:`~.logit_pairs.split_softmax`: one ``exp`` pass, shared with
    MiB's KD when the segmentor shares the logits), ``nll = lse - lse_old``
    at background/old pixels and ``lse - s_y`` at new-class pixels (one
    ``gather``), no full-size log-probabilities. Backward: with ``c`` the
    pixel's weight over the valid count, ``p = softmax(s)`` and ``e`` the
    statistics' exponentials, ``d/ds_k = c (p_k - r_k)``, ``r`` the
    softmax over the old outputs at background pixels and the one-hot
    target at new-class pixels: ``e_k * factor`` per part of the channels
    plus one ``scatter_add``. Saved: the exponentials (shared) and per-pixel
    factors.

    The second output is a view of the logits (a pass-through): a loss
    computed from it (MiB's KD, :func:`~.logit_pairs.pass_through`) sends
    its gradient through this backward, which adds the CE's to that buffer
    in place (the KD's backward makes it and marks it as its own) instead
    of allocating a second one.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, valid: Tensor,
                is_new: Tensor, weight: Optional[Tensor],
                num_old: int) -> Tensor:
        stats = split_softmax(logits, num_old)
        picked = logits.gather(1, target.unsqueeze(1))
        nll = stats.lse - torch.where(is_new.unsqueeze(1), picked, stats.lse_a)
        nll = torch.where(valid.unsqueeze(1), nll, torch.zeros_like(nll))
        coef = valid.to(logits.dtype).unsqueeze(1)
        if weight is not None:
            nll = nll * weight.unsqueeze(1)
            coef = coef * weight.unsqueeze(1)
        count = valid.sum().clamp(min=1)
        # No valid pixel: a 0 that is still attached to the graph.
        loss = nll.sum() / count
        coef = coef / count
        # d/ds = coef * (p - r); p = e * exp(m - lse) per part.
        background = (valid & ~is_new).unsqueeze(1)
        factor_a = torch.sub(stats.m_a, stats.lse).exp_().sub_(
            torch.sub(stats.m_a,
                      stats.lse_a).exp_().masked_fill_(~background,
                                                       0)).mul_(coef)
        factor_b = None
        if stats.m_b is not None:
            factor_b = torch.sub(stats.m_b, stats.lse).exp_().mul_(coef)
        onehot = coef.masked_fill_(~is_new.unsqueeze(1), 0)
        ctx.num_old = num_old
        ctx.set_materialize_grads(False)
        # The target channel in a compact dtype until the backward.
        compact = torch.uint8 if logits.shape[1] <= 256 else torch.int32
        ctx.save_for_backward(stats.exp, factor_a, factor_b, onehot,
                              target.unsqueeze(1).to(compact))
        return loss, logits.view_as(logits)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Optional[Tensor],
                 grad_through: Optional[Tensor]):
        exp, factor_a, factor_b, onehot, target = ctx.saved_tensors
        none = (None, ) * 5
        if not ctx.needs_input_grad[0] or grad_loss is None:
            return (grad_through, ) + none
        num_old = ctx.num_old
        if grad_through is not None and getattr(grad_through, OWN_GRADIENT,
                                                False):
            # The KD's own buffer: add the CE's gradient to it.
            grad = grad_through
            delattr(grad, OWN_GRADIENT)
            grad[:, :num_old].addcmul_(exp[:, :num_old], factor_a * grad_loss)
            if factor_b is not None:
                grad[:, num_old:].addcmul_(exp[:, num_old:],
                                           factor_b * grad_loss)
        else:
            grad = torch.empty_like(exp)
            torch.mul(
                exp[:, :num_old], factor_a * grad_loss, out=grad[:, :num_old])
            if factor_b is not None:
                torch.mul(
                    exp[:, num_old:],
                    factor_b * grad_loss,
                    out=grad[:, num_old:])
            if grad_through is not None:
                grad += grad_through
        grad.scatter_add_(1, target.long(), onehot * -grad_loss)
        return (grad, ) + none
