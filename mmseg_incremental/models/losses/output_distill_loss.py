"""L'_D: distillation on the output layer (ILT, Eq. 3)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS

from .logit_pairs import check_logit_pair, upsample_pair
from .loss_args import check_loss_args

_VARIANTS = ('ilt', 'mib')
_PIXEL_MASKS = ('none', 'old')
_RESOLUTIONS = ('logits', 'labels')


def _check_choice(name: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f'OutputDistillLoss got {name}={value!r}; use one '
                         f'of {", ".join(repr(c) for c in choices)}.')


def _old_pixel_mask(seg_label: Tensor, size: torch.Size, num_old_classes: int,
                    ignore_index: int) -> Tensor:
    """Pixels labelled background or an old class, at the logits' size.

    Args:
        seg_label (Tensor): Labels (output indices, ``ignore_index`` =
            ignore) of shape (N, H, W) or (N, 1, H, W), at any resolution.
        size (torch.Size): Spatial size (h, w) of the logits.
        num_old_classes (int): C_old = |S_{k-1}|.
        ignore_index (int): The label of ignored pixels.

    Returns:
        Tensor: Float mask of shape (N, h, w); 1 where
        ``0 <= label < C_old`` and ``label != ignore_index`` (the new
        classes of U_k are >= C_old).
    """
    if seg_label.dim() == 3:
        seg_label = seg_label.unsqueeze(1)
    if seg_label.dim() != 4 or seg_label.shape[1] != 1:
        raise ValueError('seg_label must have shape (N, H, W) or (N, 1, H, '
                         f'W); got {tuple(seg_label.shape)}.')
    if seg_label.shape[2:] != size:
        # Nearest downsampling, as the authors' code resizes the labels to
        # the logits (tf.image.resize_nearest_neighbor).
        seg_label = F.interpolate(seg_label.float(), size=size, mode='nearest')
    seg_label = seg_label[:, 0]
    return ((seg_label >= 0) & (seg_label < num_old_classes)
            & (seg_label != ignore_index)).float()


@MODELS.register_module()
class OutputDistillLoss(nn.Module):
    """L'_D: distillation of the previous model's class scores (Eq. 3).

    The teacher M_{k-1} has C_old = |S_{k-1}| outputs, the student M_k has
    C_new = |S_k| >= C_old; output index c < C_old is the same class in
    both. With ``q = softmax(teacher_logits / T)`` (over the C_old classes):

    - ``variant='ilt'`` (the paper, the authors' code): per pixel
      ``-sum_{c in S_{k-1}} q[c] * log p[c]`` where
      ``p = softmax(student_logits / T)`` over **all** C_new classes, so the
      new classes compete with the old ones inside the log.
    - ``variant='mib'`` (MiB/PLOP's "ILT"/"LwF"): the student logits are
      narrowed to their first C_old channels and log-softmaxed over those
      alone; per pixel ``-mean_{c in S_{k-1}} q[c] * log p_old[c]``
      (a **mean** over classes, as MiB's ``KnowledgeDistillationLoss``).

    The per-pixel term is averaged over the pixels kept by ``pixel_mask``:
    ``'none'`` keeps all of them (MiB), ``'old'`` (the authors' code) keeps
    only pixels whose label is the background or an old class (output index
    < C_old and not ``ignore_index``; never a new class of U_k); the labels
    are nearest-downsampled to the logits' resolution. When no pixel is kept
    the loss is 0. Both logits are divided by ``temperature``; the result is
    **not** multiplied by T^2 (pass ``loss_weight=lambda * T**2`` for
    Hinton's gradient scaling). The teacher's logits are detached here.
    The loss computes in fp32 whatever the logits' dtype, with autocast off
    inside (mixed precision: bf16/fp16 logits are cast up; the upsampling,
    softmaxes and sums never run in low precision).

    Args:
        variant (str): ``'ilt'`` or ``'mib'``. Defaults to ``'ilt'``.
        pixel_mask (str): ``'none'`` or ``'old'``. Defaults to ``'none'``.
        temperature (float): T > 0 dividing both logits. Defaults to 1.0.
        loss_weight (float): lambda'_D >= 0 (1 in the authors' code, 100 in
            MiB's). Defaults to 1.0.
        ignore_index (int): The label of ignored pixels, dropped by
            ``pixel_mask='old'``. Defaults to 255.
        resolution (str): Where L'_D is computed. ``'logits'``: at the
            logits' own size, the labels nearest-downsampled to it (cheap;
            MiB/PLOP). ``'labels'``: both logits bilinearly upsampled to the
            labels' size first, as L_CE is (the authors' code, LTTM/
            IL-SemSegm ``codes/LD1/network.py``); needs ``seg_label``.
            Defaults to ``'logits'``.
        align_corners (bool): ``align_corners`` of that upsampling (the
            decode head's). Defaults to False.
        loss_name (str): Log key; must start with ``loss_`` so that
            mmengine's ``parse_losses`` back-propagates it. Defaults to
            ``'loss_distill_out'``.
    """

    def __init__(self,
                 variant: str = 'ilt',
                 pixel_mask: str = 'none',
                 temperature: float = 1.0,
                 loss_weight: float = 1.0,
                 ignore_index: int = 255,
                 resolution: str = 'logits',
                 align_corners: bool = False,
                 loss_name: str = 'loss_distill_out') -> None:
        super().__init__()
        _check_choice('variant', variant, _VARIANTS)
        _check_choice('pixel_mask', pixel_mask, _PIXEL_MASKS)
        _check_choice('resolution', resolution, _RESOLUTIONS)
        if not temperature > 0:
            raise ValueError(f'OutputDistillLoss got temperature='
                             f'{temperature!r}; use a positive number '
                             '(1.0 = no temperature).')
        check_loss_args('OutputDistillLoss', loss_weight, loss_name)
        self.variant = variant
        self.pixel_mask = pixel_mask
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.ignore_index = int(ignore_index)
        self.resolution = resolution
        self.align_corners = bool(align_corners)
        self._loss_name = loss_name

    def forward(self,
                student_logits: Tensor,
                teacher_logits: Tensor,
                seg_label: Optional[Tensor] = None,
                num_old_classes: Optional[int] = None) -> Tensor:
        """Compute lambda'_D * L'_D.

        Args:
            student_logits (Tensor): M_k's logits, shape (N, C_new, h, w).
            teacher_logits (Tensor): M_{k-1}'s logits, shape
                (N, C_old, h, w) with C_old <= C_new.
            seg_label (Tensor, optional): Labels (output indices,
                ``ignore_index`` = ignore), shape (N, H, W) or
                (N, 1, H, W); needed only with
                ``pixel_mask='old'``. Defaults to None.
            num_old_classes (int, optional): C_old for the pixel mask:
                labels below it are old. Defaults to the teacher's number
                of outputs; a fixed classifier (the teacher already has an
                output for every class, the authors' code) passes
                |S_{k-1}|, and the distilled sum then runs over all the
                teacher's outputs.

        Returns:
            Tensor: The weighted loss, a scalar.
        """
        check_logit_pair('OutputDistillLoss', student_logits, teacher_logits)
        # fp32 under mixed precision: the logits are cast up and autocast,
        # which would run the upsampling in low precision, is off here.
        with torch.autocast(student_logits.device.type, enabled=False):
            return self._forward_fp32(student_logits.float(),
                                      teacher_logits.detach().float(),
                                      seg_label, num_old_classes)

    def _forward_fp32(self, student_logits: Tensor, teacher_logits: Tensor,
                      seg_label: Optional[Tensor],
                      num_old_classes: Optional[int]) -> Tensor:
        """The body of :meth:`forward` on checked fp32 logits."""
        num_old = teacher_logits.shape[1]
        if self.resolution == 'labels':
            if seg_label is None:
                raise ValueError("OutputDistillLoss(resolution='labels') "
                                 'needs seg_label (its size is the target); '
                                 "pass the labels or use resolution='logits'.")
            student_logits, teacher_logits = upsample_pair(
                student_logits, teacher_logits, seg_label.shape[-2:],
                self.align_corners)
        temp = self.temperature
        q = F.softmax(teacher_logits / temp, dim=1)
        if self.variant == 'ilt':
            log_p = F.log_softmax(student_logits / temp, dim=1)[:, :num_old]
            per_pixel = -(q * log_p).sum(dim=1)
        else:
            log_p = F.log_softmax(student_logits[:, :num_old] / temp, dim=1)
            per_pixel = -(q * log_p).mean(dim=1)

        if self.pixel_mask == 'none':
            loss = per_pixel.mean()
        else:
            if seg_label is None:
                raise ValueError("OutputDistillLoss(pixel_mask='old') needs "
                                 'seg_label; pass the labels or use '
                                 "pixel_mask='none'.")
            mask = _old_pixel_mask(
                seg_label.to(per_pixel.device), per_pixel.shape[1:],
                num_old if num_old_classes is None else num_old_classes,
                self.ignore_index)
            loss = (per_pixel * mask).sum() / mask.sum().clamp(min=1)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """str: The log key of this term (starts with ``loss_``)."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'variant={self.variant!r}, pixel_mask={self.pixel_mask!r}, '
                f'temperature={self.temperature}, '
                f'loss_weight={self.loss_weight}, '
                f'ignore_index={self.ignore_index}, '
                f'resolution={self.resolution!r}')
