"""Published numbers printed beside ours, and when they apply
(docs/design.md §4).

Two sources, each measured one way:

- **the paper** (Michieli & Zanuttigh, ICCVW 2019, arXiv 1907.13372,
  Tables 1-4): Pascal VOC 2012 val, ``setting='sequential'``,
  ``eval_protocol='seen_only'``, L'_D with ``variant='ilt'``,
  ``pixel_mask='old'``, λ'_D = 1, no temperature, L''_D with λ''_D = 50,
  EF as the method says;
- **MiB's re-run** (Cermelli et al., CVPR 2020, arXiv 2002.00718,
  Table 1, also ``voc-tab.png`` in github.com/fcdl94/MiB): ``disjoint`` with
  MiB's ``mask_unseen`` evaluation; its ILT is L'_D ``variant='mib'``
  (no pixel mask, λ = 100) plus L''_D (λ = 100), our ``'ILT (MiB)'``.
  Its "old" leaves the background out (compare with ``mIoU_old_nobg``).

A reference applies to a run only when the dataset, the task (15-5s =
15-1), the method's name and a :class:`ReferenceCondition` (setting,
protocol, the method's distillation config) all match; otherwise reports
print no reference row and say why (:func:`match_references`). mIoU in %;
"old" is S_0 with the background (the paper's 0-19 / 0-15), "new" every
class added since, "all" S_K.

Every row carries :attr:`Reference.citation`: the paper, table, row and
columns its numbers were read from. Each number here was checked against
that text (the ILT paper's Tables 1-4; MiB's Table 1 as its repository's
``voc-tab.png`` prints it); a number that cannot be checked against a
paper table or a README is not listed (docs/results.md, "Published numbers
and their sources").

.. code:: python

    >>> find_reference(PAPER_LABEL, '19-1', "L'_D").result
    OldNewAll(old=70.0, new=35.3, all=68.4)
"""
import inspect
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..models import (FeatureDistillLoss, IncrementalEncoderDecoder,
                      OutputDistillLoss)
from ..models.segmentors import model_declarations
from ..tasks import ALIASES
from .recipe import ILT_RECIPE, MIB_RECIPE, recipe_differences
from .run_summary import OldNewAll, RunSummary, harmonic

#: Label of the paper's rows in every table and plot.
PAPER_LABEL = 'paper (VOC, R101)'
#: Label of MiB's re-run (Cermelli et al., CVPR 2020, Table 1).
MIB_LABEL = 'MiB re-run (VOC, R101, disjoint)'
#: The papers the rows' numbers come from, as citations name them.
PAPER_CITATION = 'Michieli & Zanuttigh, ICCVW 2019 (arXiv 1907.13372)'
MIB_CITATION = 'Cermelli et al., CVPR 2020 (arXiv 2002.00718)'
#: The paper's rows, in the order of its tables (and of our comparisons).
METHODS: Tuple[str, ...] = ('FT', "L'_D", 'EF', "EF+L'_D", "L''_D",
                            "L'_D+L''_D", 'ILT (MiB)', 'M0', 'joint')


def _defaults(cls) -> Dict[str, Any]:
    """The keyword defaults of ``cls.__init__`` (defined once, there)."""
    return {
        k: p.default
        for k, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


#: Attributes compared, and how reasons name them.
_RUN_FIELDS = {'setting': 'setting', 'eval_protocol': 'eval_protocol'}
_OUTPUT_FIELDS = {
    'variant': "L'_D variant",
    'pixel_mask': "L'_D pixel_mask",
    'loss_weight': "λ'_D",
    'temperature': "L'_D temperature",
}
_MODEL_FIELDS = {
    'freeze_encoder': 'freeze_encoder',
    'new_class_init': 'new_class_init'
}


def _differences(want, got, names: Mapping[str, str]) -> List[str]:
    """``'<name> <want> (here <got>)'`` for each attribute that differs."""
    return [
        f'{name} {getattr(want, key)!r} (here {getattr(got, key)!r})'
        for key, name in names.items()
        if getattr(want, key) != getattr(got, key)
    ]


@dataclass(frozen=True)
class OutputDistill:
    """The L'_D settings that change the numbers."""

    variant: str
    pixel_mask: str
    loss_weight: float
    temperature: float = 1.0


@dataclass(frozen=True)
class MethodConfig:
    """What a method does at steps k >= 1: L'_D (None: off), λ''_D of
    L''_D (None: off), EF and the new classifier rows' init."""

    distill_output: Optional[OutputDistill] = None
    feature_weight: Optional[float] = None
    freeze_encoder: bool = False
    new_class_init: str = 'default'

    @classmethod
    def from_incremental(cls, incremental: Mapping) -> 'MethodConfig':
        """Read a config's ``incremental`` dict (``distill_terms``, or the
        old ``distill_output``/``distill_feature`` keys), filling what it
        leaves out with the defaults of the loss and segmentor classes; a
        term with ``loss_weight=0`` counts as off."""
        model = dict(_defaults(IncrementalEncoderDecoder), **incremental)
        output = feature = None
        for term in model_declarations(model).terms.values():
            args = dict(term)
            kind = args.pop('type')
            if kind == 'OutputDistillTerm' and args.pop(
                    'loss_type', 'OutputDistillLoss') == 'OutputDistillLoss':
                o = dict(_defaults(OutputDistillLoss), **args)
                if float(o['loss_weight']) != 0:
                    output = OutputDistill(o['variant'], o['pixel_mask'],
                                           float(o['loss_weight']),
                                           float(o['temperature']))
            elif kind == 'FeatureDistillTerm':
                f = dict(_defaults(FeatureDistillLoss), **args)
                feature = float(f['loss_weight']) or None
        return cls(output, feature, bool(model['freeze_encoder']),
                   str(model['new_class_init']))

    def differences(self, run: 'MethodConfig') -> List[str]:
        """What ``run`` does differently, e.g. ``"λ'_D 1.0 (here 2.0)"``."""
        out = []
        mine, theirs = self.distill_output, run.distill_output
        if (mine is None) != (theirs is None):
            state = 'off (here on)' if mine is None else 'on (here off)'
            out.append(f"L'_D {state}")
        elif mine is not None:
            out += _differences(mine, theirs, _OUTPUT_FIELDS)
        if self.feature_weight != run.feature_weight:
            want, got = (('off' if w is None else repr(w))
                         for w in (self.feature_weight, run.feature_weight))
            out.append(f"λ''_D {want} (here {got})")
        return out + _differences(self, run, _MODEL_FIELDS)


@dataclass(frozen=True)
class ReferenceCondition:
    """How a reference was measured. ``method`` is None for models without
    an incremental step (M0, joint): their config is not compared."""

    setting: str
    eval_protocol: str
    method: Optional[MethodConfig]
    #: The training recipe as ``(field, value)`` pairs (network, output
    #: stride, crop, total batch, schedule, evaluation: :mod:`.recipe`);
    #: None: not compared.
    recipe: Optional[Tuple[Tuple[str, Any], ...]] = None

    def mismatches(self, run: RunSummary) -> List[str]:
        """What ``run`` does differently; empty when the reference
        applies."""
        out = _differences(self, run, _RUN_FIELDS)
        if self.recipe is not None:
            out += recipe_differences(dict(self.recipe), run.recipe)
        if self.method is None:
            return out
        if run.incremental is None:
            return out + [
                "its distillation config (this summary.json has no "
                "'incremental'; rerun the experiment to record it)"
            ]
        return out + self.method.differences(
            MethodConfig.from_incremental(run.incremental))


@dataclass(frozen=True)
class Reference:
    """One published row: old/new/all at the task's last step and, where
    known, the mIoU of all seen classes after each step 0..K.

    ``source`` is the label the tables print; ``citation`` says where the
    numbers were read (paper, table, row, columns), e.g. ``"Michieli &
    Zanuttigh, ICCVW 2019 (arXiv 1907.13372), Table 1, row 'L'D': mIoU
    0-19 / 20 / all"``."""

    source: str
    task: str
    method: str
    result: OldNewAll
    condition: ReferenceCondition
    steps: Optional[Tuple[Optional[float], ...]] = None
    citation: str = ''

    @property
    def old_without_background(self) -> bool:
        """MiB's "old" leaves the background out."""
        return self.source == MIB_LABEL

    @property
    def hiou(self) -> Optional[float]:
        """hIoU computed from the published old and new."""
        return harmonic(self.result.old, self.result.new)


# --- the numbers, as data ---------------------------------------------------
_R = OldNewAll
_M0_15 = _R(75.5, None, 75.5)
_JOINT_15 = _R(75.1, 68.5, 73.6)

#: ``task -> method -> old/new/all`` at the last step (paper, Tables 1-3:
#: the mIoU columns of the old classes, the new ones and all; checked row by
#: row against the paper's text, see :func:`paper_citation`).
PAPER_OLD_NEW_ALL: Dict[str, Dict[str, OldNewAll]] = {
    '19-1': {
        'FT': _R(67.3, 20.1, 65.1),
        "L'_D": _R(70.0, 35.3, 68.4),
        'EF': _R(71.9, 43.3, 70.5),
        "EF+L'_D": _R(72.5, 51.4, 71.5),
        "L''_D": _R(72.6, 50.6, 71.6),
        "L'_D+L''_D": _R(72.8, 49.9, 71.7),
        'M0': _R(73.4, None, 73.4),
        'joint': _R(73.7, 70.5, 73.6),
    },
    '15-5': {
        'FT': _R(60.6, 38.7, 55.4),
        "L'_D": _R(71.0, 49.0, 65.7),
        "EF+L'_D": _R(70.0, 45.8, 64.2),
        "L''_D": _R(65.6, 43.9, 60.5),
        'M0': _M0_15,
        'joint': _JOINT_15,
    },
    '15-1': {
        'FT': _R(47.8, 33.0, 44.2),
        "L'_D": _R(57.4, 34.9, 52.0),
        "EF+L'_D": _R(70.5, 44.2, 64.3),
        "L''_D": _R(65.9, 45.4, 61.0),
        'M0': _M0_15,
        'joint': _JOINT_15,
    },
}
#: mIoU of all seen classes after steps 1..5 of 15-1 (paper, Table 4: its
#: mIoU column of each method, rows M1(16)..M5(20)).
PAPER_15_1_STEPS: Dict[str, Tuple[float, ...]] = {
    'FT': (71.2, 53.8, 57.7, 39.3, 44.2),
    "L'_D": (72.4, 68.1, 63.3, 54.1, 52.0),
    "EF+L'_D": (72.5, 68.4, 66.5, 61.3, 64.3),
    "L''_D": (72.2, 60.0, 65.5, 52.1, 61.0),
}
#: MiB's Table 1 under ``disjoint`` ("1-19 / 20 / all", "1-15 / 16-20 /
#: all"), rows "FT" and "ILT [24]": ``old`` leaves the background out.
#: Checked against the table as ``voc-tab.png`` of MiB's repository prints
#: it (:func:`mib_citation`).
MIB_OLD_NEW_ALL: Dict[str, Dict[str, OldNewAll]] = {
    '19-1': {
        'FT': _R(5.8, 12.3, 6.2),
        'ILT (MiB)': _R(69.1, 16.4, 66.4)
    },
    '15-5': {
        'FT': _R(1.1, 33.6, 9.2),
        'ILT (MiB)': _R(63.2, 39.5, 57.3)
    },
    '15-1': {
        'FT': _R(0.2, 1.8, 0.6),
        'ILT (MiB)': _R(3.7, 5.7, 4.2)
    },
}

_ILT = OutputDistill('ilt', 'old', 1.0)
#: The paper's methods at steps k >= 1 (authors' code, docs/design.md §2).
PAPER_METHODS: Dict[str, Optional[MethodConfig]] = {
    'FT': MethodConfig(),
    "L'_D": MethodConfig(_ILT),
    'EF': MethodConfig(freeze_encoder=True),
    "EF+L'_D": MethodConfig(_ILT, freeze_encoder=True),
    "L''_D": MethodConfig(feature_weight=50.0),
    "L'_D+L''_D": MethodConfig(_ILT, feature_weight=50.0),
    'M0': None,
    'joint': None,
}
#: MiB's FT and its re-implementation of ILT.
_MIB_ILT = OutputDistill('mib', 'none', 100.0)
MIB_METHODS: Dict[str, MethodConfig] = {
    'FT': MethodConfig(),
    'ILT (MiB)': MethodConfig(_MIB_ILT, feature_weight=100.0),
}

#: The paper's table of each task, and its old and new classes.
_PAPER_TABLES: Dict[str, Tuple[int, str, str]] = {
    '19-1': (1, '0-19', '20'),
    '15-5': (2, '0-15', '16-20'),
    '15-1': (3, '0-15', '16-20'),
}
#: The paper's name of each row (its tables write L'D as L′D).
_PAPER_ROWS: Dict[str, str] = {
    'FT': 'Fine-tuning',
    "L'_D": "L'D",
    'EF': 'EF',
    "EF+L'_D": "EF, L'D",
    "L''_D": "L''D",
    "L'_D+L''_D": "L'D, L''D",
    'joint': 'M0(0-20)',
}
#: MiB's Table 1: each task's old and new columns, and its rows' names.
_MIB_COLUMNS: Dict[str, Tuple[str, str]] = {
    '19-1': ('1-19', '20'),
    '15-5': ('1-15', '16-20'),
    '15-1': ('1-15', '16-20'),
}
_MIB_ROWS: Dict[str, str] = {'FT': 'FT', 'ILT (MiB)': 'ILT [24]'}


def paper_citation(task: str, method: str) -> str:
    """Where the paper's row of ``method`` on ``task`` was read, e.g.
    ``"... Table 3, row 'Fine-tuning': mIoU 0-15 / 16-20 / all; per step:
    Table 4, column 'Fine-tuning' mIoU, rows M1(16)-M5(20)"``."""
    table, old, new = _PAPER_TABLES[task]
    row = f'M0({old})' if method == 'M0' else _PAPER_ROWS[method]
    out = (f"{PAPER_CITATION}, Table {table}, row '{row}': mIoU {old} / "
           f'{new} / all')
    if task == '15-1' and method in PAPER_15_1_STEPS:
        out += (f"; per step: Table 4, column '{row}' mIoU, rows "
                'M1(16)-M5(20)')
    return out


def mib_citation(task: str, method: str) -> str:
    """Where MiB's row of ``method`` on ``task`` was read."""
    old, new = _MIB_COLUMNS[task]
    return (f"{MIB_CITATION}, Table 1, row '{_MIB_ROWS[method]}', {task} "
            f'Disjoint: mIoU {old} / {new} / all (voc-tab.png in '
            'github.com/fcdl94/MiB)')


def _paper_steps(task: str,
                 method: str) -> Optional[Tuple[Optional[float], ...]]:
    """The paper's mIoU after each step: M0, then Table 4 for 15-1, the
    last step's "all" elsewhere; None for joint."""
    rows = PAPER_OLD_NEW_ALL[task]
    if method == 'joint':
        return None
    m0 = rows['M0'].all
    if method == 'M0':
        return (m0, )
    if task == '15-1':
        return (m0, ) + PAPER_15_1_STEPS.get(method, (None, ) * 4 +
                                             (rows[method].all, ))
    return (m0, rows[method].all)


def _build() -> Tuple[Reference, ...]:
    out = []
    for task, rows in PAPER_OLD_NEW_ALL.items():
        for method, result in rows.items():
            cond = ReferenceCondition('sequential', 'seen_only',
                                      PAPER_METHODS[method],
                                      tuple(ILT_RECIPE.items()))
            out.append(
                Reference(PAPER_LABEL, task, method, result, cond,
                          _paper_steps(task, method),
                          paper_citation(task, method)))
    for task, rows in MIB_OLD_NEW_ALL.items():
        for method, result in rows.items():
            cond = ReferenceCondition('disjoint', 'mask_unseen',
                                      MIB_METHODS[method],
                                      tuple(MIB_RECIPE.items()))
            out.append(
                Reference(
                    MIB_LABEL,
                    task,
                    method,
                    result,
                    cond,
                    citation=mib_citation(task, method)))
    return tuple(out)


#: Every published row, paper first.
REFERENCES: Tuple[Reference, ...] = _build()


def canonical_task(dataset: str, task: str) -> str:
    """The task's canonical name (``15-5s`` -> ``15-1``)."""
    return ALIASES.get(dataset, {}).get(task, task)


def find_reference(source: str, task: str, method: str) -> Optional[Reference]:
    """The row of ``source`` for a VOC ``task`` and ``method``, if any."""
    task = canonical_task('voc', task)
    for ref in REFERENCES:
        if (ref.source, ref.task, ref.method) == (source, task, method):
            return ref
    return None


@dataclass(frozen=True)
class ReferenceMatch:
    """The references that apply to a run, and one line saying why none
    does (empty when some does)."""

    references: Tuple[Reference, ...]
    why_none: str

    def get(self, source: str) -> Optional[Reference]:
        """The applying reference of ``source``, if any."""
        for ref in self.references:
            if ref.source == source:
                return ref
        return None


def match_references(run: RunSummary,
                     method: Optional[str] = None,
                     task: Optional[str] = None) -> ReferenceMatch:
    """The published rows measured the way ``run`` was.

    Args:
        run (RunSummary): The experiment.
        method (str, optional): Match as this method instead of
            ``run.method`` (``'M0'`` for the step-0 model of a run).
        task (str, optional): Match as this task instead of ``run.task``
            (a joint run scored with a task's old/new split).
    """
    method = run.method if method is None else method
    task = canonical_task(run.dataset, run.task if task is None else task)
    candidates = [
        r for r in REFERENCES
        if run.dataset == 'voc' and (r.task, r.method) == (task, method)
    ]
    if not candidates:
        return ReferenceMatch((), f'no published reference for {method} on '
                              f'{run.dataset} {task}.')
    applying, reasons = [], []
    for ref in candidates:
        mismatches = ref.condition.mismatches(run)
        if mismatches:
            reasons.append(f'{ref.source} needs ' + ', '.join(mismatches))
        else:
            applying.append(ref)
    if applying:
        return ReferenceMatch(tuple(applying), '')
    return ReferenceMatch((), f'no published reference for {method} on '
                          f'{run.dataset} {task}: ' + '; '.join(reasons) + '.')
