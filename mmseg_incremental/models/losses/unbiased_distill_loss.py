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
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS

from .logit_pairs import check_logit_pair, upsample_pair
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
    the labels' size first (``align_corners``: the decode head's, which
    ``DistillEncoderDecoder`` passes); without ``seg_label`` the logits are
    taken as they are. The loss computes in fp32 with autocast off inside.

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
        check_logit_pair('UnbiasedDistillLoss', student_logits, teacher_logits)
        with torch.autocast(student_logits.device.type, enabled=False):
            student_logits = student_logits.float()
            teacher_logits = teacher_logits.detach().float()
            if self.resolution == 'labels' and seg_label is not None \
                    and seg_label.shape[-2:] != student_logits.shape[2:]:
                student_logits, teacher_logits = upsample_pair(
                    student_logits, teacher_logits, seg_label.shape[-2:],
                    self.align_corners)
            return self._forward_fp32(student_logits, teacher_logits, mask)

    def _forward_fp32(self, student_logits: Tensor, teacher_logits: Tensor,
                      mask: Optional[Tensor]) -> Tensor:
        """The body of :meth:`forward` on checked fp32 logits."""
        num_old = teacher_logits.shape[1]
        q = F.softmax(self.alpha * teacher_logits, dim=1)

        den = torch.logsumexp(student_logits, dim=1)
        # log of (bg or new) before normalisation: bg and outputs >= C_old.
        log_bg = student_logits[:, 0]
        if student_logits.shape[1] > num_old:
            log_bg = torch.logaddexp(
                log_bg, torch.logsumexp(student_logits[:, num_old:], dim=1))
        # sum_c q_c log p^_c with log p^_c = z_c - den (z_0 = log_bg) and
        # sum_c q_c = 1: q_0 z_0 + sum_{0<c<C_old} q_c s_c - den (no
        # full-size copy of the C_old log-probabilities).
        inner = q[:, 0] * log_bg - den
        if num_old > 1:
            inner = inner + (q[:, 1:] * student_logits[:, 1:num_old]).sum(1)
        per_pixel = -inner / num_old

        if mask is not None:
            if mask.dim() == 4 and mask.shape[1] == 1:
                mask = mask[:, 0]
            if mask.shape != per_pixel.shape:
                raise ValueError('UnbiasedDistillLoss needs a mask of shape '
                                 f'{tuple(per_pixel.shape)}; got '
                                 f'{tuple(mask.shape)}.')
            per_pixel = per_pixel * mask.to(per_pixel.dtype)
        return self.loss_weight * per_pixel.mean()

    @property
    def loss_name(self) -> str:
        """str: The log key of this term (starts with ``loss_``)."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, alpha={self.alpha}, '
                f'resolution={self.resolution!r}')
