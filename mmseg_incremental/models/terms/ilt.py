"""ILT's terms (Michieli & Zanuttigh, ICCVW 2019): output distillation
L'_D (Eq. 3) and feature distillation L''_D (Eq. 4).

EF, ILT's third technique, is not a term: it is the segmentor's
``freeze_encoder`` (the encoder is shared with M_{k-1}, see
:class:`~..segmentors.IncrementalEncoderDecoder`).

.. code:: python

    distill_terms=dict(
        output=dict(type='OutputDistillTerm', variant='ilt',
                    pixel_mask='old', loss_weight=1.0),    # L'_D
        feature=dict(type='FeatureDistillTerm', loss_weight=50.0))  # L''_D
"""
import copy
from typing import Dict

import torch
from torch import Tensor

from mmseg.registry import MODELS
from .base import DistillBatch, DistillTerm


@MODELS.register_module()
class OutputDistillTerm(DistillTerm):
    """L'_D (Eq. 3): M_k's logits against M_{k-1}'s on the old classes.

    The keyword arguments are those of the loss ``loss_type`` (default
    :class:`~..losses.OutputDistillLoss`: ``variant``, ``pixel_mask``,
    ``temperature``, ``loss_weight``, ``resolution``, ...); its
    ``ignore_index`` and ``align_corners`` default to the decode head's,
    so L'_D ignores the pixels L_CE ignores. The loss gets the student's
    logits (|S_k| outputs), all the teacher's and the labels (N, 1, H, W),
    and ``num_old_classes`` = C_old when it is an ``OutputDistillLoss``.
    Logged as ``distill.loss_distill_out``.

    Args:
        loss_type (str): A registered loss with the call signature
            ``(student_logits, teacher_logits, seg_label)``. Defaults to
            ``'OutputDistillLoss'``.
        **loss_args: The loss's arguments.
    """

    teacher_needs = frozenset({'logits'})
    has_resolution = True

    def __init__(self,
                 loss_type: str = 'OutputDistillLoss',
                 **loss_args) -> None:
        super().__init__()
        self.loss_cfg = dict(type=loss_type, **copy.deepcopy(loss_args))
        # Built now to check the arguments; again in setup() with the
        # head's ignore_index and align_corners as defaults.
        self.distill = MODELS.build(self.loss_cfg)

    def setup(self, model) -> None:
        cfg = dict(self.loss_cfg)
        if cfg['type'] == 'OutputDistillLoss':
            cfg.setdefault('ignore_index', model.decode_head.ignore_index)
        cfg.setdefault('align_corners', model.decode_head.align_corners)
        self.distill = MODELS.build(cfg)
        self._pass_old = type(self.distill).__name__ == 'OutputDistillLoss'

    def loss(self, model, batch: DistillBatch) -> Dict[str, Tensor]:
        seg_label = torch.stack(
            [sample.gt_sem_seg.data for sample in batch.data_samples])
        extra = dict(num_old_classes=model.num_old_classes) \
            if self._pass_old else dict()
        return {
            self.distill.loss_name:
            self.distill(batch.seg_logits, batch.teacher.logits, seg_label,
                         **extra)
        }


@MODELS.register_module()
class FeatureDistillTerm(DistillTerm):
    """L''_D (Eq. 4): L2 between M_k's and M_{k-1}'s encoder features,
    those the decode head reads (res5 for DeepLab-v2; the mean over the
    head's inputs when it reads several). Logged as
    ``distill.loss_distill_feat``.

    Meaningless with EF (the frozen encoder equals the teacher's): refused
    there.

    Args:
        loss_type (str): A registered loss called as ``(student_feat,
            teacher_feat)``. Defaults to ``'FeatureDistillLoss'``.
        **loss_args: The loss's arguments (``loss_weight``, ...).
    """

    teacher_needs = frozenset({'feats'})

    def __init__(self,
                 loss_type: str = 'FeatureDistillLoss',
                 **loss_args) -> None:
        super().__init__()
        self.distill = MODELS.build(
            dict(type=loss_type, **copy.deepcopy(loss_args)))

    def setup(self, model) -> None:
        if model.freeze_encoder:
            raise ValueError(
                "L''_D (FeatureDistillTerm) with EF (freeze_encoder=True) "
                "is meaningless: the frozen encoder equals the teacher's. "
                'Remove the term or set freeze_encoder=False.')

    def loss(self, model, batch: DistillBatch) -> Dict[str, Tensor]:
        student = model.decode_head._transform_inputs(batch.feats)
        old = model.teacher.decode_head._transform_inputs(batch.teacher.feats)
        if isinstance(student, Tensor):
            student, old = [student], [old]
        return {
            self.distill.loss_name:
            sum(self.distill(s, t)
                for s, t in zip(student, old)) / len(student)
        }
