"""MiB's terms (Cermelli et al., CVPR 2020): the unbiased cross-entropy
(Eq. 4) that replaces the classification loss at steps k >= 1, and the
unbiased knowledge distillation (Eq. 5-6).

MiB's third part, the new classifier rows initialised from the
background's, is the segmentor's ``new_class_init='background'``
(:func:`~..utils.grow_classifier_`), which MiB's method fragment sets.

.. code:: python

    distill_terms=dict(
        unbiased_ce=dict(type='UnbiasedCETerm'),
        unbiased_kd=dict(type='UnbiasedKDTerm', loss_weight=10.0,
                         alpha=1.0)),
    new_class_init='background'
"""
import copy
from typing import Dict, List, Optional, Union

import torch.nn as nn
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from ..decode_heads.loss_by_feat import batch_labels, label_logits
from .base import DistillBatch, DistillTerm


def install_decode_loss(head: nn.Module, cfg: Union[dict, List[dict]],
                        num_old_classes: int) -> None:
    """Build ``cfg`` (a loss config or a list of them) as the head's
    ``loss_decode``, telling C_old to every loss that has a
    ``num_old_classes`` attribute. Losses holding parameters or buffers are
    refused: they would add keys to the step's checkpoint."""
    cfgs = list(cfg) if isinstance(cfg, (list, tuple)) else [cfg]
    losses = []
    for item in cfgs:
        loss = MODELS.build(copy.deepcopy(item))
        if hasattr(loss, 'num_old_classes'):
            loss.num_old_classes = int(num_old_classes)
        if any(True for _ in loss.state_dict()):
            raise ValueError(
                f'decode_loss {type(loss).__name__} holds parameters or '
                'buffers; it would change the checkpoint keys of M_k. Use a '
                'loss without state.')
        losses.append(loss)
    if not isinstance(head, BaseDecodeHead):
        raise TypeError('decode_loss replaces the loss_decode of an mmseg '
                        f'BaseDecodeHead; got {type(head).__name__}.')
    head.loss_decode = losses[0] if len(losses) == 1 else nn.ModuleList(losses)


@MODELS.register_module()
class UnbiasedCETerm(DistillTerm):
    """MiB's unbiased cross-entropy as the decode head's ``loss_decode``
    at this step (C_old set in it): mmseg's ``loss_by_feat`` upsamples
    the logits to the labels and calls it as any mmseg loss, logged as
    ``decode.loss_unbiased_ce`` (with MiB's KD, which reads the same
    upsampled logits, the segmentor upsamples them once for both, and
    both losses share one softmax of them and one gradient buffer). The
    teacher's head and the auxiliary heads keep the configured loss; step
    0 keeps the head's plain cross-entropy (MiB's ``train.py`` when there
    are no old classes).

    Args:
        loss_decode (dict | list[dict], optional): The loss config(s).
            Defaults to ``dict(type='UnbiasedCrossEntropyLoss')``; any
            stateless mmseg loss with a ``num_old_classes`` attribute gets
            C_old.
    """

    def __init__(
            self,
            loss_decode: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__()
        self.loss_decode = copy.deepcopy(loss_decode) if loss_decode \
            is not None else dict(type='UnbiasedCrossEntropyLoss')
        for cfg in self.loss_decode if isinstance(
                self.loss_decode, (list, tuple)) else [self.loss_decode]:
            MODELS.build(copy.deepcopy(cfg))  # checks the arguments now

    def setup(self, model) -> None:
        install_decode_loss(model.decode_head, self.loss_decode,
                            model.num_old_classes)


@MODELS.register_module()
class UnbiasedKDTerm(DistillTerm):
    """MiB's unbiased knowledge distillation: the student's logits (|S_k|
    outputs) against the teacher's C_old, at the labels' resolution
    (MiB's ``resolution='labels'``) or the logits' (``'logits'``); logged
    as ``distill.loss_unbiased_kd``.

    At the labels' resolution the student's upsampled logits are those of
    the decode loss (:func:`~..decode_heads.loss_by_feat.label_logits`,
    computed once per step; ``reads_label_logits`` tells the segmentor),
    and with MiB's unbiased CE as the decode loss both share one softmax
    of them.

    Args:
        **loss_args: :class:`~..losses.UnbiasedDistillLoss`'s arguments
            (``loss_weight``, ``alpha``, ``resolution``, ...);
            ``align_corners`` defaults to the decode head's.
    """

    teacher_needs = frozenset({'logits'})
    has_resolution = True

    def __init__(self, **loss_args) -> None:
        super().__init__()
        self.loss_args = copy.deepcopy(loss_args)
        # Built now to check the arguments; again in setup() with the
        # head's align_corners as default.
        self.distill = MODELS.build(
            dict(type='UnbiasedDistillLoss', **self.loss_args))

    @property
    def reads_label_logits(self) -> bool:
        """bool: Whether the loss reads the student's logits at the labels'
        size (the segmentor then upsamples them once for the decode loss
        and this term)."""
        return self.distill.resolution == 'labels'

    def setup(self, model) -> None:
        args = dict(self.loss_args)
        args.setdefault('align_corners', model.decode_head.align_corners)
        self.distill = MODELS.build(dict(type='UnbiasedDistillLoss', **args))

    def loss(self, model, batch: DistillBatch) -> Dict[str, Tensor]:
        seg_label = batch_labels(batch)
        student = batch.seg_logits
        if self.reads_label_logits:
            student = label_logits(batch, self.distill.align_corners)
        return {
            self.distill.loss_name:
            self.distill(
                student,
                model.old_logits(batch.teacher.logits),
                seg_label=seg_label)
        }
