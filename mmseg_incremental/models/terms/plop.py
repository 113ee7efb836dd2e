"""PLOP's terms (Douillard et al., CVPR 2021): Local POD on the backbone
stages, the decoder's output and the logits, and entropy pseudo-labels
of the background with PLOP's adaptive factor.

PLOP's new classifier rows start from the background's as MiB's: the
segmentor's ``new_class_init='background'``, set by PLOP's fragment.

.. code:: python

    distill_terms=dict(
        pod=dict(type='LocalPODTerm', loss_weight=0.01,
                 last_layer_weight=0.0005, scales=(1, 2, 4),
                 pod_inputs='pre_relu'),
        pseudo_label=dict(type='PseudoLabelTerm', threshold=0.001)),
    new_class_init='background'
"""
import copy
import logging
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import SampleList
from ..decode_heads.loss_by_feat import (batch_labels, decode_loss_by_feat,
                                         has_mmseg_loss_by_feat, label_logits)
from ..utils.pseudo_label import (MEDIAN_RULES, PLOP_NUM_BINS, PLOP_THRESHOLD,
                                  plop_entropy_thresholds, plop_pseudo_label)
from ..utils.stages import last_blocks, request_all_stages, upsample_to
from .base import DistillBatch, DistillTerm

#: What POD reads of each backbone stage (``LocalPODTerm(pod_inputs=)``).
POD_INPUTS = ('pre_relu', 'post_relu')


@MODELS.register_module()
class LocalPODTerm(DistillTerm):
    """PLOP's Local POD (:class:`~..losses.PODLoss`).

    The pairs are every backbone stage (a ResNet is asked for all its
    stages, the heads' ``in_index`` re-pointed: see
    :func:`~..utils.stages.request_all_stages`; other encoders give what
    they return), the decoder's output before its classifier (the input
    of ``cls_seg``, where the head has a ``conv_seg``; ``DeepLabV2Head``
    has none) and the logits at the features' resolution, all from the one
    student forward; scaled by sqrt(|S_k| / |U_k|). Logged as
    ``distill.loss_pod``.

    PLOP distils each stage's output *before* its last activation
    (arthurdouillard/CVPR2021_PLOP, commit 4b4a060: ``modules/residual.py``
    l.125-138, the last block of a stage returns ``(act, x)`` with ``x``
    the residual sum before ``leaky_relu``; ``models/resnet.py`` l.126-139
    collects those ``x`` as ``attentions``; ``segmentation_module.py``
    l.311 passes them, then ``pre_logits``, to POD), and POD squares them:
    the negative values of the residual sums count, which the stage
    outputs after mmseg's ReLU have lost. ``pod_inputs='pre_relu'`` reads
    these from the same forwards, for the student and the frozen teacher
    (:class:`~..utils.stages.PreActivationCapture` on the last
    ``BasicBlock``/``Bottleneck`` of each stage; with EF's shared encoder
    the teacher's are the student's); ``'post_relu'`` reads the backbone's
    outputs as they are (the stage outputs after the ReLU). A backbone
    that is not mmseg's ResNet family has no such block: POD then reads
    its outputs (logged at setup).

    Args:
        pod_inputs (str): ``'pre_relu'`` (PLOP's, the default) or
            ``'post_relu'``. Defaults to ``'pre_relu'``.
        **loss_args: ``PODLoss``'s arguments (``loss_weight``,
            ``last_layer_weight``, ``scales``, ``normalize``, ...).
    """

    teacher_needs = frozenset({'stages', 'pre_logits', 'logits'})
    student_needs = frozenset({'stages', 'pre_logits'})
    needs_num_seen_classes = True

    def __init__(self, pod_inputs: str = 'pre_relu', **loss_args) -> None:
        super().__init__()
        if pod_inputs not in POD_INPUTS:
            raise ValueError(f'LocalPODTerm pod_inputs={pod_inputs!r} is '
                             "unknown; use 'pre_relu' (PLOP's) or "
                             "'post_relu'.")
        self.pod_inputs = pod_inputs
        self.distill = MODELS.build(
            dict(type='PODLoss', **copy.deepcopy(loss_args)))

    @property
    def reads_pre_act_stages(self) -> bool:
        """bool: Whether POD reads the stages before their last activation
        (``pod_inputs='pre_relu'``)."""
        return self.pod_inputs == 'pre_relu'

    def setup(self, model) -> None:
        if self.reads_pre_act_stages and last_blocks(model.backbone) is None:
            print_log(
                "LocalPODTerm(pod_inputs='pre_relu'): "
                f'{type(model.backbone).__name__} is not a ResNet of '
                "mmseg's; POD reads its stage outputs as they are.",
                logger='current',
                level=logging.WARNING)

    def stage_pairs(self,
                    batch: DistillBatch) -> Tuple[List[Tensor], List[Tensor]]:
        """The (student, teacher) stage maps POD compares (see the class
        docstring)."""
        student, old = batch.pre_act_stages, batch.teacher.pre_act_stages
        if not self.reads_pre_act_stages or (student is None and old is None):
            return list(batch.stages), list(batch.teacher.stages)
        if student is None or old is None:
            raise RuntimeError(
                'LocalPODTerm: the stages before their last activation '
                'came for one model only (student: '
                f'{student is not None}, teacher: {old is not None}).')
        return list(student), list(old)

    def extra_repr(self) -> str:
        return f'pod_inputs={self.pod_inputs!r}, ' + super().extra_repr()

    @classmethod
    def adapt_model_cfg(cls, model_cfg: dict) -> dict:
        backbone, decode_head, auxiliary_head, _ = request_all_stages(
            model_cfg['backbone'], model_cfg.get('neck'),
            model_cfg['decode_head'], model_cfg.get('auxiliary_head'))
        return dict(
            model_cfg,
            backbone=backbone,
            decode_head=decode_head,
            auxiliary_head=auxiliary_head)

    def loss(self, model, batch: DistillBatch) -> Dict[str, Tensor]:
        teacher = batch.teacher
        student, old = self.stage_pairs(batch)
        if batch.pre_logits is not None and teacher.pre_logits is not None:
            student.append(batch.pre_logits)
            old.append(teacher.pre_logits)
        student.append(batch.seg_logits)
        old.append(model.old_logits(teacher.logits))
        with torch.autocast(batch.seg_logits.device.type, enabled=False):
            value = self.distill(
                student,
                old,
                num_classes=model.num_seen_classes,
                num_new_classes=model.num_seen_classes - model.num_old_classes)
        return {self.distill.loss_name: value}


#: ``PseudoLabelTerm`` settings and their defaults (PLOP's, ``--method
#: PLOP``); ``type`` is the criterion (only ``'entropy'``).
PSEUDO_LABEL_DEFAULTS = dict(
    type='entropy',
    threshold=PLOP_THRESHOLD,
    num_bins=PLOP_NUM_BINS,
    median_rule='plop',
    adaptive_factor=True)


def check_pseudo_label(cfg: Optional[dict]) -> Optional[dict]:
    """Pseudo-labelling settings with PLOP's defaults filled in, or
    None."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    unknown = set(cfg) - set(PSEUDO_LABEL_DEFAULTS)
    if unknown:
        raise ValueError(f'pseudo_label got {sorted(unknown)}; it takes '
                         f'{sorted(PSEUDO_LABEL_DEFAULTS)}.')
    cfg = dict(PSEUDO_LABEL_DEFAULTS, **cfg)
    if cfg['type'] != 'entropy':
        raise ValueError(f"pseudo_label type={cfg['type']!r} is unknown; "
                         "use 'entropy' (PLOP).")
    if cfg['median_rule'] not in MEDIAN_RULES:
        raise ValueError(f"pseudo_label median_rule={cfg['median_rule']!r} "
                         f'is unknown; use one of {MEDIAN_RULES}.')
    if not int(cfg['num_bins']) >= 1:
        raise ValueError(f"pseudo_label num_bins={cfg['num_bins']!r}; need "
                         '>= 1.')
    cfg['threshold'] = float(cfg['threshold'])
    cfg['num_bins'] = int(cfg['num_bins'])
    cfg['adaptive_factor'] = bool(cfg['adaptive_factor'])
    return cfg


@MODELS.register_module()
class PseudoLabelTerm(DistillTerm):
    """PLOP's pseudo-labelling: it replaces the decode loss.

    The per-class entropy thresholds of the step come from one teacher
    pass over the step's training images before training
    (``PseudoLabelHook``, which planning adds, or :meth:`fit_thresholds`);
    each batch, pixels labelled background or old take the teacher's
    confident prediction (else ignored), and the decode loss runs on these
    labels weighted by the adaptive factor per image (mmseg's per-pixel
    ``weight``; PLOP's reduction is mmseg's ``avg_non_ignore=False``).
    Logged as ``decode.loss_ce`` and ``decode.pseudo_factor`` (the mean
    factor, not a loss).

    Args:
        criterion (str): ``'entropy'`` (PLOP). Defaults to ``'entropy'``.
        threshold (float): PLOP's ``threshold``. Defaults to 0.001.
        num_bins (int): Entropy histogram bins. Defaults to 100.
        median_rule (str): ``'plop'`` (PLOP's ``find_median``) or
            ``'interpolated'``. Defaults to ``'plop'``.
        adaptive_factor (bool): PLOP's ``classif_adaptive_factor``.
            Defaults to True.
    """

    teacher_needs = frozenset({'logits'})
    training_hooks = ('PseudoLabelHook', )
    replaces_decode_loss = True
    needs_num_seen_classes = True

    def __init__(self,
                 criterion: str = 'entropy',
                 threshold: float = PLOP_THRESHOLD,
                 num_bins: int = PLOP_NUM_BINS,
                 median_rule: str = 'plop',
                 adaptive_factor: bool = True) -> None:
        super().__init__()
        #: The settings (``type`` = criterion), as checkpoints record them.
        self.settings = check_pseudo_label(
            dict(
                type=criterion,
                threshold=threshold,
                num_bins=num_bins,
                median_rule=median_rule,
                adaptive_factor=adaptive_factor))
        # (thresholds on the CPU, max_entropy) once fitted; device copies
        self._fit: Optional[Tuple[Tensor, float]] = None
        self._thresholds_on: Dict[torch.device, Tensor] = {}
        self._counts: Tuple[int, int] = (0, 0)

    def setup(self, model) -> None:
        if not has_mmseg_loss_by_feat(model.decode_head):
            raise TypeError(
                f'{type(model.decode_head).__name__} overrides loss_by_feat;'
                " pseudo-labels are supported for heads that use "
                "BaseDecodeHead's.")
        self._counts = (model.num_seen_classes, model.num_old_classes)

    def decode_loss(self, model, batch: DistillBatch) -> Dict[str, Tensor]:
        if self._fit is None:
            raise RuntimeError(
                'PseudoLabelTerm needs the entropy thresholds of this step '
                "before training: add dict(type='PseudoLabelHook') to "
                'custom_hooks (the experiment does) or call '
                'fit_thresholds(model, batches) first.')
        head = model.decode_head
        seg_label = batch_labels(batch)
        old = model.old_logits(batch.teacher.logits)
        thresholds, max_entropy = self._fit
        device = old.device
        if device not in self._thresholds_on:
            self._thresholds_on[device] = thresholds.to(device)
        # The teacher's logits upsampled to the labels inside (fp32, a few
        # images at a time), as PLOP upsamples them before all of this.
        with torch.autocast(device.type, enabled=False):
            labels, factor = plop_pseudo_label(
                old,
                seg_label,
                model.num_old_classes,
                self._thresholds_on[device],
                max_entropy,
                ignore_index=head.ignore_index,
                align_corners=head.align_corners)
        weight = None
        if self.settings['adaptive_factor']:
            weight = factor[:, None, None].expand(labels.shape)
        # The student's logits at the labels' size: upsampled once per
        # step (shared with any term that reads them).
        losses = decode_loss_by_feat(head,
                                     label_logits(batch, head.align_corners),
                                     labels, weight)
        losses['pseudo_factor'] = factor.mean()  # logged, not a loss
        return losses

    @torch.no_grad()
    def fit_thresholds(self, model,
                       batches: Iterable[Tuple[Tensor, SampleList]]) -> Tensor:
        """PLOP's per-class entropy thresholds of this step, from the
        teacher over ``batches`` of preprocessed ``(inputs,
        data_samples)`` (the step's training images, their augmentation
        included), and use them from now on.

        The teacher's logits (C_old outputs) are upsampled to the labels;
        pixels labelled 0 count; |S_k| histograms (PLOP's
        ``find_median``, :func:`plop_entropy_thresholds`). Costs one
        teacher forward per image, no backward.

        Returns:
            Tensor: The |S_k| thresholds (float32, CPU).
        """
        align_corners = model.teacher.decode_head.align_corners

        def teacher_batches():
            for inputs, data_samples in batches:
                teacher = model.runnable_teacher(inputs.device.type)
                logits = teacher.decode_head.forward(
                    teacher.extract_feat(inputs))
                label = model.decode_head._stack_batch_gt(data_samples)[:, 0]
                yield upsample_to(
                    model.old_logits(logits), label.shape[-2:],
                    align_corners), label

        cfg = self.settings
        thresholds, max_entropy = plop_entropy_thresholds(
            teacher_batches(),
            model.num_seen_classes,
            threshold=cfg['threshold'],
            num_bins=cfg['num_bins'],
            median_rule=cfg['median_rule'])
        self.set_thresholds(thresholds, max_entropy)
        return self._fit[0]

    def set_thresholds(self, thresholds: Sequence[float],
                       max_entropy: float) -> None:
        """Use these |S_k| thresholds and entropy normaliser."""
        thresholds = torch.as_tensor(
            thresholds, dtype=torch.float32).detach().cpu().reshape(-1)
        if thresholds.numel() != self._counts[0]:
            raise ValueError(f'Got {thresholds.numel()} pseudo-label '
                             f'thresholds; need |S_k| = {self._counts[0]}.')
        self._fit = (thresholds, float(max_entropy))
        self._thresholds_on = {}

    def state(self) -> Optional[dict]:
        """The fitted thresholds as plain data (checkpoints), or None."""
        if self._fit is None:
            return None
        thresholds, max_entropy = self._fit
        return dict(
            thresholds=thresholds.tolist(),
            max_entropy=max_entropy,
            num_seen_classes=self._counts[0],
            num_old_classes=self._counts[1],
            pseudo_label=dict(self.settings))

    def load_state(self, state: Optional[dict]) -> bool:
        """Use thresholds from :meth:`state` if they were fitted for this
        step's classes and settings; whether they were."""
        if not isinstance(state, dict):
            return False
        if (state.get('num_seen_classes') != self._counts[0]
                or state.get('num_old_classes') != self._counts[1]
                or state.get('pseudo_label') != dict(self.settings)):
            return False
        self.set_thresholds(state['thresholds'], state['max_entropy'])
        return True
