"""What every output-distillation loss does to its (student, teacher) pair.

L'_D (:class:`OutputDistillLoss`) and MiB's KD (:class:`UnbiasedDistillLoss`)
both compare the student's C_new logits with the teacher's C_old, at the
logits' resolution or upsampled to the labels; the shape contract and the
upsampling live here once.
"""
from typing import Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor


def check_logit_pair(loss: str, student_logits: Tensor,
                     teacher_logits: Tensor) -> None:
    """Raise unless the logits are (N, C_new, h, w) and (N, C_old, h, w)
    with C_new >= C_old.

    Args:
        loss (str): The loss's name, for the message.
        student_logits (Tensor): The student's logits.
        teacher_logits (Tensor): The teacher's logits.
    """
    if student_logits.dim() != 4 or teacher_logits.dim() != 4:
        raise ValueError(f'{loss} expects logits of shape (N, C, h, w); got '
                         f'student {tuple(student_logits.shape)}, teacher '
                         f'{tuple(teacher_logits.shape)}.')
    if (student_logits.shape[0] != teacher_logits.shape[0]
            or student_logits.shape[2:] != teacher_logits.shape[2:]
            or student_logits.shape[1] < teacher_logits.shape[1]):
        raise ValueError(
            f'{loss} needs teacher logits (N, C_old, h, w) and student '
            'logits (N, C_new, h, w) with C_new >= C_old; got student '
            f'{tuple(student_logits.shape)}, teacher '
            f'{tuple(teacher_logits.shape)}.')


def upsample_pair(student_logits: Tensor, teacher_logits: Tensor,
                  size: Sequence[int],
                  align_corners: bool) -> Tuple[Tensor, Tensor]:
    """Both logits bilinearly resized to ``size`` (the labels'), as mmseg's
    ``loss_by_feat`` resizes the logits for L_CE."""
    return tuple(
        F.interpolate(
            logits, tuple(size), mode='bilinear', align_corners=align_corners)
        for logits in (student_logits, teacher_logits))
