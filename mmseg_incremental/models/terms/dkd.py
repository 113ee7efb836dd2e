"""DKD's term (Baek et al., "Decomposed Knowledge Distillation for
Class-Incremental Semantic Segmentation", NeurIPS 2022): what DKD does at
steps k >= 1 on top of its head (``DKDHead``).

Facts from the authors' code, ``cvlab-yonsei/DKD`` (commit fb4693f); the
losses' own facts are in :mod:`..losses.dkd_loss`, the head's in
:mod:`..decode_heads.dkd_head`:

* ``trainer/trainer_voc.py:348-376``: L = mbce * L_mbce (new classes) +
  kd * L_kd + dkd_pos * L_dkd_pos + dkd_neg * L_dkd_neg + ac * L_ac, with
  mbce 1, kd 5, dkd_pos 5, dkd_neg 5, ac 1 (``configs/config_voc.json:
  75-82``, also ``config_ade.json``) and ``pos_weight`` 1 at steps k >= 1
  (the VOC scripts pass ``--pos_weight 2`` at step 0 only; ADE's json
  sets 35 for every step).
* ``train_voc.py:118-121`` and ``models/model.py:110-115``
  (``init_novel_classifier``): with ``ac > 0`` every new classifier row
  (weight and bias) is a copy of the auxiliary classifier ``cls[0]`` that
  was just loaded from M_{k-1} (its rows were loaded with ``strict=False``,
  ``model.py:155-157``); ``cls[0]`` itself keeps M_{k-1}'s weights and
  goes on learning with L_ac.
* ``scripts/voc/overlapped/train_voc_*.sh``, ``scripts/ade/...``: every
  step k >= 1 runs with ``--freeze_bn`` (``freeze_all_bn``):
  ``model.py:117-133`` puts every BatchNorm of the network in eval mode
  (statistics frozen) after each ``model.train()``
  (``trainer_voc.py:321-327``), and ``model.py:169-195`` leaves their
  affine parameters out of the optimizer; ``model.py:150-153``
  (``freeze_dropout``) puts every dropout in eval mode at steps k >= 1
  (``trainer_voc.py:324``).
* ``train_voc.py:127-135``: at steps k >= 1 the optimizer's groups are
  the backbone (lr, no weight decay), the ASPP and the old classifiers
  (``cls[0]`` included; 10 lr, no weight decay) and the new classifier
  (10 lr, the optimizer's weight decay, 1e-4 in ``config_voc.json:70``).
  The lr multipliers are the configs' ``paramwise_cfg`` (the same at step
  0, ``train_voc.py:137-143``); the weight decay, which step 0 applies to
  every group, is this term's: ``DKDHook`` sets the optimizer's groups to
  ``weight_decay`` (0) at ``before_train``, and the new rows -- rows of
  the same ``conv_seg`` tensor as the old ones, so no parameter group of
  their own -- get SGD's decay as the gradient of
  ``new_class_weight_decay / 2 * ||rows||^2`` (``loss_wd_new``: SGD adds
  ``weight_decay * p`` to the gradient, the same).

Where the auxiliary classifier lives: row 0 of the head's ``conv_seg``
(``DKDHead``): part of M_k's checkpoint, copied from M_{k-1} with the old
rows by the classifier growth, and the source of the new rows, which
:meth:`DKDTerm.setup` sets (and ``DKDHead.init_weights`` sets again after
mmengine's initialisation, before the segmentor copies the old rows).

.. code:: python

    distill_terms=dict(dkd=dict(type='DKDTerm')),
    new_class_init='default'
"""
import copy
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from mmseg.registry import MODELS
from ..decode_heads.dkd_head import DKDHead
from ..decode_heads.loss_by_feat import label_logits
from ..losses.dkd_loss import decomposed_responses, sigmoid_distill_loss
from ..losses.logit_pairs import upsample_logits
from .base import DistillBatch, DistillTerm
from .mib import install_decode_loss

#: DKD's losses at steps k >= 1 (``config_voc.json:75-82``: mbce 1,
#: pos_weight 1, ac 1).
DKD_STEP_LOSSES = (dict(
    type='MultiLabelBCELoss', pos_weight=1.0,
    loss_weight=1.0), dict(type='AuxClassifierLoss', loss_weight=1.0))


def _weight(name: str, value: float) -> float:
    value = float(value)
    if not value >= 0:
        raise ValueError(f'DKDTerm got {name}={value!r}; use a weight >= 0.')
    return value


@MODELS.register_module()
class DKDTerm(DistillTerm):
    """DKD at a step k >= 1 (see the module docstring).

    It installs the step's decode losses in the student's ``DKDHead``
    (``decode.loss_mbce`` on the new classes, ``decode.loss_ac``; the head
    also logs ``decode.acc_seg`` of DKD's prediction) and adds
    ``distill.loss_kd`` (the old classes' logits, at the labels' size),
    ``distill.loss_dkd_pos`` / ``distill.loss_dkd_neg`` (the decomposed
    responses of the old classifiers, at the features' size) and
    ``distill.loss_wd_new``.

    The decode loss stays the head's (``replaces_decode_loss`` is False):
    the segmentor calls no ``loss()`` of a term that replaces it, and the
    head computes L_mbce and L_ac as at step 0. The student's logits are
    thus upsampled twice, once by the head and once for L_kd
    (``label_logits``).

    Args:
        loss_decode (dict | list[dict], optional): The decode losses of the
            step, installed in the student's head with C_old. Defaults to
            :data:`DKD_STEP_LOSSES` (``pos_weight`` 1).
        kd (float): DKD's ``kd`` factor. Defaults to 5.
        dkd_pos (float): DKD's ``dkd_pos`` factor. Defaults to 5.
        dkd_neg (float): DKD's ``dkd_neg`` factor. Defaults to 5.
        init_from_aux (bool): New rows start as copies of M_{k-1}'s
            auxiliary classifier (DKD with ``ac > 0``); False keeps the
            segmentor's ``new_class_init``. Defaults to True.
        freeze_bn (bool): Every BatchNorm of M_k in eval mode and its
            affine parameters frozen (``--freeze_bn``). Defaults to True.
        weight_decay (float, optional): Weight decay that ``DKDHook`` gives
            every optimizer group (None: as configured). Defaults to 0.
        new_class_weight_decay (float): SGD weight decay of the new
            classifier rows (``loss_wd_new``; 0: none). Defaults to 1e-4.
    """

    teacher_needs = frozenset({'logits', 'pre_logits'})
    student_needs = frozenset({'pre_logits'})
    training_hooks = ('DKDHook', )

    def __init__(self,
                 loss_decode: Optional[Union[dict, List[dict]]] = None,
                 kd: float = 5.0,
                 dkd_pos: float = 5.0,
                 dkd_neg: float = 5.0,
                 init_from_aux: bool = True,
                 freeze_bn: bool = True,
                 weight_decay: Optional[float] = 0.0,
                 new_class_weight_decay: float = 1e-4) -> None:
        super().__init__()
        self.loss_decode = copy.deepcopy(loss_decode) if loss_decode \
            is not None else [dict(c) for c in DKD_STEP_LOSSES]
        for cfg in self.loss_decode if isinstance(
                self.loss_decode, (list, tuple)) else [self.loss_decode]:
            MODELS.build(copy.deepcopy(cfg))  # checks the arguments now
        self.kd = _weight('kd', kd)
        self.dkd_pos = _weight('dkd_pos', dkd_pos)
        self.dkd_neg = _weight('dkd_neg', dkd_neg)
        self.init_from_aux = bool(init_from_aux)
        self.freeze_bn = bool(freeze_bn)
        self.weight_decay = None if weight_decay is None else _weight(
            'weight_decay', weight_decay)
        self.new_class_weight_decay = _weight('new_class_weight_decay',
                                              new_class_weight_decay)
        # The segmentor, hidden from nn.Module (a term holds no module).
        self._model: tuple = ()

    # --- set-up --------------------------------------------------------------
    def setup(self, model) -> None:
        head = model.decode_head
        if not isinstance(head, DKDHead):
            raise TypeError(
                f'DKDTerm needs a DKDHead as decode head (got '
                f"{type(head).__name__}): model.decode_head=dict(type="
                "'DKDHead', head_type='ASPPHead', ...) in the experiment "
                'config, so that step 0 trains DKD\'s classifiers too.')
        if model.teacher_classes == model.num_classes:
            raise ValueError(
                'DKDTerm grows the classifier (new rows from the auxiliary '
                "classifier); classifier='fixed' is not supported.")
        if self.init_from_aux and model.new_class_init != 'default':
            raise ValueError(
                'DKDTerm(init_from_aux=True) sets the new rows from the '
                "auxiliary classifier; use new_class_init='default' (got "
                f'{model.new_class_init!r}).')
        install_decode_loss(head, self.loss_decode, model.num_old_classes)
        if self.init_from_aux:
            old = model.teacher.decode_head.conv_seg
            head.set_new_class_init(model.num_old_classes, old.weight[0],
                                    None if old.bias is None else old.bias[0])
        self._model = (model, )
        if self.freeze_bn:
            for module in self._batch_norms(model):
                for param in module.parameters(recurse=False):
                    param.requires_grad_(False)
        self._freeze_modes()

    @staticmethod
    def _batch_norms(model: nn.Module) -> List[nn.Module]:
        return [m for m in model.modules() if isinstance(m, _BatchNorm)]

    def _freeze_modes(self) -> None:
        """BatchNorm (with ``freeze_bn``) and dropout of M_k in eval mode."""
        if not self._model:
            return
        for module in self._model[0].modules():
            if isinstance(module,
                          _DropoutNd) or (self.freeze_bn
                                          and isinstance(module, _BatchNorm)):
                module.eval()

    def train(self, mode: bool = True) -> 'DKDTerm':
        """The segmentor's ``train()`` reaches its terms after its backbone
        and heads (``nn.Module.train`` visits the children in order): put
        the BatchNorm and dropout layers back in eval mode, as DKD's
        trainer does after each ``model.train()``."""
        super().train(mode)
        if mode:
            self._freeze_modes()
        return self

    # --- losses --------------------------------------------------------------
    def loss(self, model, batch: DistillBatch) -> Dict[str, Tensor]:
        head = model.decode_head
        old = model.num_old_classes
        losses: Dict[str, Tensor] = {}
        if self.kd > 0:
            student = label_logits(batch, head.align_corners)
            teacher = model.old_logits(batch.teacher.logits)[:, 1:old]
            with torch.autocast(teacher.device.type, enabled=False):
                teacher = upsample_logits(teacher.float(), student.shape[-2:],
                                          head.align_corners)
            losses['loss_kd'] = self.kd * sigmoid_distill_loss(
                student[:, 1:old], teacher)
        if self.dkd_pos > 0 or self.dkd_neg > 0:
            if batch.pre_logits is None or batch.teacher.pre_logits is None:
                raise RuntimeError(
                    'DKDTerm needs the input of the head\'s classifier '
                    '(cls_seg called once per forward); '
                    f'{type(head).__name__} gave none.')
            pos, neg = decomposed_responses(batch.pre_logits,
                                            head.conv_seg.weight[1:old])
            with torch.no_grad():
                old_pos, old_neg = decomposed_responses(
                    batch.teacher.pre_logits,
                    model.teacher.decode_head.conv_seg.weight[1:old])
            if self.dkd_pos > 0:
                losses['loss_dkd_pos'] = self.dkd_pos * sigmoid_distill_loss(
                    pos, old_pos)
            if self.dkd_neg > 0:
                losses['loss_dkd_neg'] = self.dkd_neg * sigmoid_distill_loss(
                    neg, old_neg)
        if self.new_class_weight_decay > 0:
            conv = head.conv_seg
            square = conv.weight[old:].float().pow(2).sum()
            if conv.bias is not None:
                square = square + conv.bias[old:].float().pow(2).sum()
            losses['loss_wd_new'] = 0.5 * self.new_class_weight_decay * square
        return losses

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, kd={self.kd}, dkd_pos={self.dkd_pos}'
                f', dkd_neg={self.dkd_neg}, freeze_bn={self.freeze_bn}')
