"""What a method adds to the incremental segmentor: a distillation term.

A method is a list of terms in the config (the segmentor's
``distill_terms``, a dict ``name -> term config`` so that method fragments
merge under mmengine's ``_base_`` inheritance). Each term is a registered
``nn.Module`` (mmseg's ``MODELS``) that declares, as class attributes,
what it needs and what it brings, and computes its loss from the outputs
the segmentor hands it:

.. code:: text

    IncrementalEncoderDecoder.loss()
      student: encoder -> (stages, feats) -> head -> (seg_logits, pre_logits)
      teacher M_{k-1}: only the outputs some term declared (TEACHER_OUTPUTS)
      decode loss: mmseg's, or the one term that replaces it
      term.loss(model, batch) for each term -> 'distill.<loss name>'

Declarations (read by the segmentor, by planning and by deployment; no list
of method names is kept anywhere else):

* ``teacher_needs``: which of M_{k-1}'s outputs the term reads
  (:data:`TEACHER_OUTPUTS`); the teacher runs only when some term needs it.
* ``student_needs``: extra student outputs (``'stages'``: the backbone's
  outputs before a neck; ``'pre_logits'``: the input of the classifier).
* ``training_hooks``: hook types the step needs (planning adds them,
  deployment drops them).
* ``replaces_decode_loss``: the term computes the decode head's loss
  (:meth:`DistillTerm.decode_loss`) instead of mmseg's ``loss_by_feat``.
* ``needs_num_seen_classes``: the term needs |S_k| (with a fixed
  classifier planning passes it).
* ``has_resolution``: the term takes a ``resolution`` argument that the
  experiment's ``distill_resolution`` setting overrides.
* ``reads_label_logits``: the term reads the student's logits at the
  labels' size (``DistillBatch.shared``), so the segmentor upsamples them
  once for the decode loss and the term (an instance may decide it from
  its arguments, as MiB's KD does from its ``resolution``).
* ``reads_pre_act_stages``: the term reads the backbone's stage outputs
  *before* their last activation (``DistillBatch.pre_act_stages`` and
  ``TeacherOutputs.pre_act_stages``: PLOP's POD inputs), which the
  segmentor captures from the student's and the teacher's own forwards
  (:class:`~..utils.stages.PreActivationCapture`; an instance may decide
  it from its arguments, as ``LocalPODTerm`` from ``pod_inputs``). They
  are None for a backbone that is not mmseg's ResNet family.

A term must hold no parameters or buffers: a step checkpoint holds only
M_k's ``backbone.*``/``decode_head.*`` and loads into a stock
``EncoderDecoder``.
"""
from typing import (TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Hashable,
                    NamedTuple, Optional, Sequence, Tuple)

import torch.nn as nn
from torch import Tensor

from mmseg.utils import ConfigType, SampleList

if TYPE_CHECKING:  # pragma: no cover
    from ..segmentors.incremental_encoder_decoder import \
        IncrementalEncoderDecoder

#: What M_{k-1} can compute for a term: the encoder features its head
#: reads, the logits, the backbone outputs (before a neck) and the input
#: of its classifier.
TEACHER_OUTPUTS = frozenset({'feats', 'logits', 'stages', 'pre_logits'})
#: Extra student outputs a term may ask for.
STUDENT_OUTPUTS = frozenset({'stages', 'pre_logits'})


class TeacherOutputs(NamedTuple):
    """What M_{k-1} computed on a batch; None where no term needs it.

    ``feats``: the encoder features its head reads; ``logits``: its head's
    output (all its outputs: slice with :meth:`DistillBatch.old_logits`);
    ``stages``: the backbone's outputs (``feats`` without a neck);
    ``pre_logits``: the input of its classifier; ``pre_act_stages``: the
    stage outputs before their last activation (``reads_pre_act_stages``).
    """
    feats: Optional[Sequence[Tensor]]
    logits: Optional[Tensor]
    stages: Optional[Sequence[Tensor]] = None
    pre_logits: Optional[Tensor] = None
    pre_act_stages: Optional[Sequence[Tensor]] = None


class DistillBatch(NamedTuple):
    """The student's outputs on a batch and the teacher's, as handed to
    every term.

    ``stages``/``feats``: the backbone's outputs and the features the
    heads read (the same object without a neck); ``seg_logits``: the
    decode head's output at its own resolution; ``pre_logits``: the input
    of its classifier when a term asked for it (else None);
    ``teacher``: :class:`TeacherOutputs`; ``memo``: tensors that the
    decode loss and the terms of one ``loss()`` call compute once and
    share (:meth:`shared`, e.g. the student's logits at the labels' size),
    a dict the segmentor creates per call (None: nothing is shared);
    ``pre_act_stages``: the backbone's stage outputs before their last
    activation when a term reads them (``reads_pre_act_stages``; else
    None).
    """
    inputs: Tensor
    data_samples: SampleList
    stages: Sequence[Tensor]
    feats: Sequence[Tensor]
    seg_logits: Tensor
    pre_logits: Optional[Tensor]
    teacher: TeacherOutputs
    memo: Optional[Dict[Hashable, Any]] = None
    pre_act_stages: Optional[Sequence[Tensor]] = None

    def shared(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per ``loss()`` call for each ``key`` (held
        in ``memo`` until the call returns; computed every time without a
        memo)."""
        if self.memo is None:
            return compute()
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


class DistillTerm(nn.Module):
    """Base of the distillation terms (see the module docstring).

    Subclasses set the declarations and implement :meth:`loss` (and
    :meth:`decode_loss` when ``replaces_decode_loss``). :meth:`setup` runs
    once the teacher is loaded (C_old, |S_k| and the heads are known).
    """

    teacher_needs: FrozenSet[str] = frozenset()
    student_needs: FrozenSet[str] = frozenset()
    training_hooks: Tuple[str, ...] = ()
    replaces_decode_loss: bool = False
    needs_num_seen_classes: bool = False
    has_resolution: bool = False
    reads_label_logits: bool = False
    reads_pre_act_stages: bool = False

    @classmethod
    def adapt_model_cfg(cls, model_cfg: dict) -> dict:
        """The segmentor's ``backbone``/``neck``/heads configs as this term
        needs them, before student and teacher are built (both alike).
        Returns ``model_cfg`` (a dict of those four keys), changed or not.
        """
        return model_cfg

    def setup(self, model: 'IncrementalEncoderDecoder') -> None:
        """Read what the term needs off the built model (C_old, |S_k|,
        the decode head's ``ignore_index``...)."""

    def loss(self, model: 'IncrementalEncoderDecoder',
             batch: DistillBatch) -> Dict[str, Tensor]:
        """The term's losses, keyed by loss name (logged as
        ``distill.<name>``); a key without ``loss`` in it is logged, not
        summed (mmengine's rule)."""
        return {}

    def decode_loss(self, model: 'IncrementalEncoderDecoder',
                    batch: DistillBatch) -> Dict[str, Tensor]:
        """The decode head's losses (``replaces_decode_loss`` terms only;
        logged as ``decode.<name>``)."""
        raise NotImplementedError(
            f'{type(self).__name__} declares replaces_decode_loss but '
            'does not implement decode_loss().')

    def extra_repr(self) -> str:
        return ', '.join(f'{k}={sorted(v)}'
                         for k, v in (('teacher_needs', self.teacher_needs),
                                      ('student_needs', self.student_needs))
                         if v)


def term_class(cfg: ConfigType) -> type:
    """The registered :class:`DistillTerm` subclass a term config names."""
    from mmseg.registry import MODELS
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(cls, type) and issubclass(cls, DistillTerm)):
        raise TypeError(
            f'distill_terms entry {dict(cfg)!r} does not name a registered '
            'DistillTerm (e.g. OutputDistillTerm, FeatureDistillTerm, '
            'UnbiasedCETerm, UnbiasedKDTerm, LocalPODTerm, PseudoLabelTerm); '
            'import the module that registers it (custom_imports).')
    return cls
