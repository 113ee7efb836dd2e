"""L''_D: distillation on the encoder's features (ILT, Eq. 4)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS

from .loss_args import check_loss_args


@MODELS.register_module()
class FeatureDistillLoss(nn.Module):
    """L''_D: mean squared error between E_{k-1}(X) and E_k(X) (Eq. 4).

    The features are the encoder's output (res5 of ResNet-101, 2048
    channels, for DeepLab-v2); the mean runs over every element (batch,
    channels and positions). The teacher's features are detached here.
    Computed in fp32 with autocast off inside, whatever the features' dtype
    (mixed-precision training).
    Meaningless together with EF (the paper): the segmentor refuses that.

    Args:
        loss_weight (float): lambda''_D >= 0 (50 in the authors' code, 100
            in MiB's). Defaults to 1.0.
        loss_name (str): Log key; must start with ``loss_``. Defaults to
            ``'loss_distill_feat'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_distill_feat') -> None:
        super().__init__()
        check_loss_args('FeatureDistillLoss', loss_weight, loss_name)
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        """Compute lambda''_D * L''_D.

        Args:
            student_feat (Tensor): E_k(X), e.g. of shape (N, 2048, h, w).
            teacher_feat (Tensor): E_{k-1}(X), the same shape.

        Returns:
            Tensor: The weighted loss, a scalar.
        """
        if student_feat.shape != teacher_feat.shape:
            raise ValueError('FeatureDistillLoss needs student and teacher '
                             'features of the same shape; got '
                             f'{tuple(student_feat.shape)} and '
                             f'{tuple(teacher_feat.shape)}.')
        with torch.autocast(student_feat.device.type, enabled=False):
            return self.loss_weight * F.mse_loss(student_feat.float(),
                                                 teacher_feat.detach().float())

    @property
    def loss_name(self) -> str:
        """str: The log key of this term (starts with ``loss_``)."""
        return self._loss_name

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
