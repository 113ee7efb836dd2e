"""``DistillEncoderDecoder``: the segmentor's earlier name and keys.

Configs written before methods became terms keep working: the loss keys
become terms, everything else is :class:`IncrementalEncoderDecoder`'s.

================================  ====================================
old key                           term (a ``distill_terms`` entry)
================================  ====================================
``distill_output`` (L'_D)         ``output``: ``OutputDistillTerm``
``distill_output`` (MiB's KD)     ``output``: ``UnbiasedKDTerm``
``distill_feature``               ``feature``: ``FeatureDistillTerm``
``decode_loss``                   ``decode_loss``: ``UnbiasedCETerm``
``distill_pod``                   ``pod``: ``LocalPODTerm``
``pseudo_label``                  ``pseudo_label``: ``PseudoLabelTerm``
================================  ====================================

``distill_output`` becomes ``UnbiasedKDTerm`` when its type is
``UnbiasedDistillLoss``, else ``OutputDistillTerm`` with that loss type;
``pseudo_label``'s ``type`` becomes the term's ``criterion``.
"""
import copy
from typing import Dict, Optional

from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import OptConfigType
from ..terms.plop import PseudoLabelTerm, check_pseudo_label
from .incremental_encoder_decoder import IncrementalEncoderDecoder

#: The keys of the loss terms before they were registered terms.
LEGACY_TERM_KEYS = ('distill_output', 'distill_feature', 'decode_loss',
                    'distill_pod', 'pseudo_label')


def legacy_terms(distill_output: OptConfigType = None,
                 distill_feature: OptConfigType = None,
                 decode_loss: OptConfigType = None,
                 distill_pod: OptConfigType = None,
                 pseudo_label: OptConfigType = None) -> Dict[str, dict]:
    """The ``distill_terms`` that the old loss keys meant, in the order the
    old segmentor computed them (decode loss; L'_D or MiB's KD, POD,
    L''_D)."""
    terms = {}
    if decode_loss is not None:
        terms['decode_loss'] = dict(
            type='UnbiasedCETerm', loss_decode=copy.deepcopy(decode_loss))
    if pseudo_label is not None:
        cfg = check_pseudo_label(pseudo_label)  # the old key's own errors
        criterion = cfg.pop('type')
        terms['pseudo_label'] = dict(
            type='PseudoLabelTerm', criterion=criterion, **cfg)
    if distill_output is not None:
        cfg = dict(distill_output)
        kind = cfg.pop('type', 'OutputDistillLoss')
        if kind == 'UnbiasedDistillLoss':
            terms['output'] = dict(type='UnbiasedKDTerm', **cfg)
        else:
            terms['output'] = dict(
                type='OutputDistillTerm', loss_type=kind, **cfg)
    if distill_pod is not None:
        cfg = dict(distill_pod)
        cfg.pop('type', None)
        terms['pod'] = dict(type='LocalPODTerm', **cfg)
    if distill_feature is not None:
        cfg = dict(distill_feature)
        kind = cfg.pop('type', 'FeatureDistillLoss')
        terms['feature'] = dict(
            type='FeatureDistillTerm', loss_type=kind, **cfg)
    return terms


@MODELS.register_module()
class DistillEncoderDecoder(IncrementalEncoderDecoder):
    """:class:`IncrementalEncoderDecoder` with the loss keys of its first
    version (see the module docstring): each becomes a term. Its
    attributes (``distill_output``, ``pseudo_label``,
    ``fit_pseudo_label_thresholds()``, ...) read the terms.

    Args:
        distill_output (dict, optional): L'_D (an ``OutputDistillLoss``
            config) or MiB's KD (``UnbiasedDistillLoss``).
        distill_feature (dict, optional): L''_D (``FeatureDistillLoss``).
        decode_loss (dict | list[dict], optional): MiB's unbiased CE.
        distill_pod (dict, optional): PLOP's ``PODLoss``.
        pseudo_label (dict, optional): PLOP's pseudo-labelling settings
            (``type``, ``threshold``, ``num_bins``, ``median_rule``,
            ``adaptive_factor``).
        distill_terms (dict, optional): More terms, after these.
        **kwargs: :class:`IncrementalEncoderDecoder`'s arguments.
    """

    TRAINING_ONLY_KEYS = IncrementalEncoderDecoder.TRAINING_ONLY_KEYS + \
        LEGACY_TERM_KEYS

    @classmethod
    def term_configs(cls, model_cfg) -> Dict[str, dict]:
        terms = legacy_terms(**{k: model_cfg.get(k) for k in LEGACY_TERM_KEYS})
        named = super().term_configs(model_cfg)
        clash = set(terms) & set(named)
        if clash:
            raise ValueError(
                f'distill_terms names {sorted(clash)}, which the old keys '
                f'also set; move {sorted(LEGACY_TERM_KEYS)} into '
                "distill_terms (type 'IncrementalEncoderDecoder').")
        terms.update(named)
        return terms

    def __init__(self,
                 *args,
                 distill_output: OptConfigType = None,
                 distill_feature: OptConfigType = None,
                 decode_loss: OptConfigType = None,
                 distill_pod: OptConfigType = None,
                 pseudo_label: OptConfigType = None,
                 distill_terms: Optional[dict] = None,
                 **kwargs) -> None:
        terms = self.term_configs(
            dict(
                distill_output=distill_output,
                distill_feature=distill_feature,
                decode_loss=decode_loss,
                distill_pod=distill_pod,
                pseudo_label=pseudo_label,
                distill_terms=distill_terms))
        super().__init__(*args, distill_terms=terms, **kwargs)

    # --- the first version's attributes, read off the terms ----------------
    def _term_loss(self, name: str):
        term = self.distill_terms[name] if name in self.distill_terms \
            else None
        return getattr(term, 'distill', None)

    @property
    def distill_output(self):
        """L'_D's (or MiB's KD's) loss module, or None."""
        return self._term_loss('output')

    @property
    def distill_feature(self):
        """L''_D's loss module, or None."""
        return self._term_loss('feature')

    @property
    def distill_pod(self):
        """POD's loss module, or None."""
        return self._term_loss('pod')

    @property
    def pseudo_label(self) -> Optional[dict]:
        """PLOP's pseudo-labelling settings, or None."""
        term = self._pseudo_term()
        return None if term is None else term.settings

    def _pseudo_term(self):
        terms = self.terms_of_type(PseudoLabelTerm)
        return terms[0] if terms else None

    def _pseudo_term_or_raise(self):
        term = self._pseudo_term()
        if term is None:
            raise ValueError('fit_pseudo_label_thresholds: this model has '
                             'no pseudo_label.')
        return term

    def fit_pseudo_label_thresholds(self, batches) -> Tensor:
        """:meth:`PseudoLabelTerm.fit_thresholds` of the model's term."""
        return self._pseudo_term_or_raise().fit_thresholds(self, batches)

    def set_pseudo_label_thresholds(self, thresholds,
                                    max_entropy: float) -> None:
        """:meth:`PseudoLabelTerm.set_thresholds` of the model's term."""
        self._pseudo_term_or_raise().set_thresholds(thresholds, max_entropy)

    def pseudo_label_state(self) -> Optional[dict]:
        """:meth:`PseudoLabelTerm.state`, or None without the term."""
        term = self._pseudo_term()
        return None if term is None else term.state()

    def load_pseudo_label_state(self, state: Optional[dict]) -> bool:
        """:meth:`PseudoLabelTerm.load_state`; False without the term."""
        term = self._pseudo_term()
        return term is not None and term.load_state(state)

    def _runnable_teacher(self, device_type: str):
        return self.runnable_teacher(device_type)
