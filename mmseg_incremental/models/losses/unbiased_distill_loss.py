"""MiB's unbiased knowledge distillation (Cermelli et al., CVPR 2020, Eq. 5).

Facts taken from the authors' code, ``fcdl94/MiB`` (commit 1c58983):

- ``utils/loss.py``, ``UnbiasedKnowledgeDistillationLoss``: the teacher's
  targets are ``softmax(alpha * teacher_logits)`` over its C_old outputs;
  the student's background log-probability is
  ``logsumexp(student[:, [0] + [C_old, ..., C_new - 1]]) -
  logsumexp(student)``, old classes ``1 .. C_old - 1`` keep
  ``student[:, c] - logsumexp(student)``; the per-pixel sum
  ``q_0 log p^_0 + sum_c q_c log p^_c`` is divided by C_old (the number of
  teacher outputs); with a mask the per-pixel loss is multiplied by
  ``mask.float()`` and, with ``reduction='mean'``, ``-torch.mean`` then runs
  over **all** N x H x W pixels (masked-out ones count as 0 in the
  denominator too). This module does the same. (MiB slices the old
  classes as ``student[:, 1:-new_cl]``, empty when C_new == C_old; here
  that case gives background = output 0 alone.)
- ``argparser.py``: ``alpha`` defaults to 1.0; ``--method MiB`` sets
  ``loss_kd = 10`` (lambda, the weight of this term, for every dataset),
  applied in ``train.py`` as ``lkd = self.lkd * self.lkd_loss(outputs,
  outputs_old)`` (no mask). That weight is config: ``loss_weight`` here.
- ``segmentation_module.py``: both models' logits are bilinearly upsampled
  to the input size before the loss (here ``resolution='labels'``, the
  default; ``'logits'`` computes it at the logits' own size, cheaper, as
  this project's L'_D does by default).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor
from torch.autograd.function import once_differentiable

from mmseg.registry import MODELS

from .logit_pairs import (OWN_GRADIENT, SplitSoftmax, check_logit_pair,
                          image_chunks, pass_through, split_softmax,
                          upsample_logits)
from .loss_args import check_loss_args


@MODELS.register_module()
class UnbiasedDistillLoss(nn.Module):
    """MiB's unbiased knowledge distillation ``l_kd`` (Eq. 5).

    The teacher f_{theta^{t-1}} scores C_old = |Y^{t-1}| outputs
    (background included), the student f_{theta^t} C_new >= C_old; output
    ``c < C_old`` is the same class in both. The teacher saw the new classes
    of C^t as background, so the student's background probability is that
    of "background or any new class":

    ``log q^(i, 0) = logsumexp(s[{0} u [C_old, C_new)]) - logsumexp(s)`` and
    ``log q^(i, c) = s_c - logsumexp(s)`` for ``0 < c < C_old``, with ``s``
    the student's logits at pixel i.

    ``l_kd = -1/|I| sum_{i in I} 1/C_old sum_{c < C_old} q_c log q^(i, c)``
    with ``q = softmax(alpha * teacher_logits)`` over the C_old outputs
    (``alpha`` hardens the soft targets; MiB's default is 1). With a
    ``mask`` the per-pixel terms of masked-out pixels are zeroed but the
    mean still runs over all pixels, as MiB's code does. The teacher's
    logits are detached here. MiB weights this term by lambda = 10
    (``loss_kd`` set by ``--method MiB`` in its ``argparser.py``): pass it
    as ``loss_weight``.

    Both logits must have the same spatial size. With
    ``resolution='labels'`` (MiB: both upsampled to the input size) and
    ``seg_label`` given to :meth:`forward`, both are bilinearly upsampled to
    the labels' size (``align_corners``: the decode head's, which
    ``UnbiasedKDTerm`` passes): the student's may come at that size
    already (the segmentor upsamples them once for the decode loss and
    this term), the teacher's are upsampled inside, a few images at a
    time. Without ``seg_label`` the logits are taken as they are. The loss
    computes in fp32 with autocast off inside, with a hand-written
    backward (:class:`_UnbiasedKD`: no full-size log-probabilities, the
    teacher's probabilities never whole).

    Args:
        loss_weight (float): lambda >= 0. Defaults to 1.0.
        alpha (float): Factor of the teacher's logits before their softmax.
            Defaults to 1.0.
        resolution (str): ``'labels'`` (MiB) or ``'logits'``; the
            experiment's top-level ``distill_resolution`` sets it. Defaults
            to ``'labels'``.
        align_corners (bool): ``align_corners`` of that upsampling.
            Defaults to False.
        loss_name (str): Log key; must start with ``loss_`` so that
            mmengine's ``parse_losses`` back-propagates it. Defaults to
            ``'loss_unbiased_kd'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 alpha: float = 1.0,
                 resolution: str = 'labels',
                 align_corners: bool = False,
                 loss_name: str = 'loss_unbiased_kd') -> None:
        super().__init__()
        check_loss_args('UnbiasedDistillLoss', loss_weight, loss_name)
        if resolution not in ('labels', 'logits'):
            raise ValueError(f'UnbiasedDistillLoss got resolution='
                             f"{resolution!r}; use 'labels' or 'logits'.")
        self.loss_weight = float(loss_weight)
        self.alpha = float(alpha)
        self.resolution = resolution
        self.align_corners = bool(align_corners)
        self._loss_name = loss_name

    def forward(self,
                student_logits: Tensor,
                teacher_logits: Tensor,
                mask: Optional[Tensor] = None,
                seg_label: Optional[Tensor] = None) -> Tensor:
        """Compute ``loss_weight * l_kd``.

        Args:
            student_logits (Tensor): The current model's logits, shape
                (N, C_new, H, W).
            teacher_logits (Tensor): The previous model's logits, shape
                (N, C_old, H, W) with C_old <= C_new.
            mask (Tensor, optional): Bool or float (N, H, W): pixels to keep
                (1/True). Masked-out pixels add 0 but still count in the
                mean (MiB). Defaults to None (all pixels).
            seg_label (Tensor, optional): The labels, (N, H, W) or (N, 1, H,
                W); with ``resolution='labels'`` both logits are upsampled
                to their size (only the size is read). Defaults to None.

        Returns:
            Tensor: The weighted loss, a scalar.
        """
        upsample = self.resolution == 'labels' and seg_label is not None
        if not upsample or student_logits.dim() != 4 \
                or teacher_logits.dim() != 4 \
                or student_logits.shape[0] != teacher_logits.shape[0] \
                or student_logits.shape[1] < teacher_logits.shape[1]:
            check_logit_pair('UnbiasedDistillLoss', student_logits,
                             teacher_logits)
        with torch.autocast(student_logits.device.type, enabled=False):
            student_logits = student_logits.float()
            teacher_logits = teacher_logits.detach().float()
            if upsample:
                # The student's may come upsampled already (the
                # segmentor's shared label_logits); the teacher's are
                # upsampled inside, a few images at a time.
                size = tuple(seg_label.shape[-2:])
                student_logits = upsample_logits(student_logits, size,
                                                 self.align_corners)
            return self._forward_fp32(student_logits, teacher_logits, mask)

    def _forward_fp32(self, student_logits: Tensor, teacher_logits: Tensor,
                      mask: Optional[Tensor]) -> Tensor:
        """The body of :meth:`forward` on checked fp32 logits; the
        teacher's are bilinearly upsampled to the student's size
        (``align_corners``) where that differs."""
        if mask is not None:
            if mask.dim() == 4 and mask.shape[1] == 1:
                mask = mask[:, 0]
            expected = (student_logits.shape[0], ) + tuple(
                student_logits.shape[2:])
            if tuple(mask.shape) != expected:
                raise ValueError('UnbiasedDistillLoss needs a mask of shape '
                                 f'{expected}; got {tuple(mask.shape)}.')
            mask = mask.to(student_logits.dtype)
        stats = split_softmax(student_logits, teacher_logits.shape[1])
        # Logits shared with MiB's CE: through the CE's pass-through (one
        # gradient buffer for both).
        return self.loss_weight * _UnbiasedKD.apply(
            pass_through(student_logits), teacher_logits, mask, self.alpha,
            self.align_corners, stats)

    @property
    def loss_name(self) -> str:
        """str: The log key of this term (starts with ``loss_``)."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, alpha={self.alpha}, '
                f'resolution={self.resolution!r}')


def _teacher_exp(teacher: Tensor, size: Tuple[int, int], alpha: float,
                 align_corners: bool) -> Tuple[Tensor, Tensor]:
    """``exp(alpha t - max)`` of the teacher's logits at ``size`` (a new
    tensor) and 1 / its sum over the channels: ``q = softmax(alpha t)`` is
    their product."""
    x = upsample_logits(teacher, size, align_corners)
    fresh = x is not teacher
    if alpha != 1.0:
        x = x.mul_(alpha) if fresh else x * alpha
        fresh = True
    top = x.amax(dim=1, keepdim=True)
    x = x.sub_(top) if fresh else x - top
    x.exp_()
    return x, x.sum(dim=1, keepdim=True).reciprocal_()


class _UnbiasedKD(torch.autograd.Function):
    """``l_kd`` (before ``loss_weight``) of fp32 logits with a hand-written
    backward.

    Forward: the student's softmax statistics split at C_old
    (:func:`~.logit_pairs.split_softmax`; those MiB's CE left on shared
    logits are reused) and, a few images at a time
    (:func:`~.logit_pairs.image_chunks`), the teacher's ``q =
    softmax(alpha t)`` at the student's size (upsampled here) and per
    pixel ``sum_c q_c log p^_c = q_0 lse_bg + sum_{0<c<C_old}
    q_c s_c - lse`` (the dot product accumulated channel by channel: no
    full-size product). Backward, with ``c`` the pixel's ``mask / (N H W
    C_old)`` and ``p = softmax(s)``: ``d/ds_k = c (p_k - q_0 [k in bg]
    softmax_bg(s)_k - [0 < k < C_old] q_k)``, bg = {0} u [C_old, C_new):
    two products with the saved exponentials, and ``q`` computed again
    chunk by chunk from the teacher's logits (one more upsampling and
    ``exp`` of them instead of keeping a full-size tensor).
    """

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor, mask: Optional[Tensor],
                alpha: float, align_corners: bool,
                stats: SplitSoftmax) -> Tensor:
        num_old = teacher.shape[1]
        size = tuple(student.shape[2:])
        s0 = student[:, :1]
        # log of (bg or new) before normalisation.
        log_bg = s0 if stats.lse_b is None else torch.logaddexp(
            s0, stats.lse_b)
        factor_0 = torch.empty_like(stats.lse)
        factor_b = None if stats.m_b is None else torch.empty_like(stats.lse)
        total = student.new_zeros(())
        for part in image_chunks(student.shape[0]):
            exp_t, inv_sum_t = _teacher_exp(teacher[part], size, alpha,
                                            align_corners)
            q0 = exp_t[:, :1] * inv_sum_t
            dot = torch.zeros_like(q0)
            for c in range(1, num_old):
                dot[:, 0].addcmul_(exp_t[:, c], student[part, c])
            del exp_t
            # -(q_0 lse_bg + sum q_c s_c - lse) / C_old, in place.
            per_pixel = dot.mul_(inv_sum_t).addcmul_(q0, log_bg[part]).sub_(
                stats.lse[part]).div_(-num_old)
            if mask is not None:
                per_pixel.mul_(mask[part].unsqueeze(1))
            total += per_pixel.sum()
            del per_pixel, dot
            torch.sub(s0[part], log_bg[part], out=factor_0[part])
            factor_0[part].exp_().mul_(q0)
            if factor_b is not None:
                torch.sub(stats.m_b[part], log_bg[part], out=factor_b[part])
                factor_b[part].exp_().mul_(q0).neg_().add_(
                    torch.sub(stats.m_b[part], stats.lse[part]).exp_())
        num_pixels = stats.lse.numel()
        # Per-pixel factors of the gradient (times c in backward).
        factor_a = torch.sub(stats.m_a, stats.lse).exp_()
        ctx.num_old = num_old
        ctx.options = (size, alpha, align_corners,
                       1.0 / (num_pixels * num_old))
        ctx.save_for_backward(stats.exp, teacher, mask, factor_a, factor_0,
                              factor_b)
        return total / num_pixels

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor):
        (exp_s, teacher, mask, factor_a, factor_0,
         factor_b) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        num_old = ctx.num_old
        size, alpha, align_corners, scale = ctx.options
        coef = grad_loss * scale
        if mask is not None:
            coef = mask.unsqueeze(1) * coef
        grad = torch.empty_like(exp_s)
        torch.mul(exp_s[:, :num_old], factor_a * coef, out=grad[:, :num_old])
        grad[:, :1].sub_(factor_0 * coef)
        if factor_b is not None:
            torch.mul(
                exp_s[:, num_old:], factor_b * coef, out=grad[:, num_old:])
        if num_old > 1:
            for part in image_chunks(exp_s.shape[0]):
                exp_t, inv_sum_t = _teacher_exp(teacher[part], size, alpha,
                                                align_corners)
                part_coef = coef if coef.dim() == 0 else coef[part]
                grad[part, 1:num_old].addcmul_(
                    exp_t[:, 1:], inv_sum_t.mul_(part_coef), value=-1)
        # A buffer of its own: MiB's CE may add its gradient to it.
        setattr(grad, OWN_GRADIENT, True)
        return grad, None, None, None, None, None
