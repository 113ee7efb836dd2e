"""The row model that every table renders (report.md and compare_runs).

.. code:: text

    RunSummary / StepResult ─ result_values() ─┐
    Reference ─────────── reference_values() ──┼─> Row(label, source, values)
    runs + references ──────── series_rows() ──┘        │
                                         render(rows, columns) -> Markdown
                                         cells(row, columns)   -> CSV

A :class:`Row` holds numbers by column key; a :class:`Column` says which
key (or which text field of the row) a table shows under which title.
The paper's and MiB's rows are built here and only here, from
:mod:`.references`, for the runs they apply to.
"""
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .references import METHODS, Reference, match_references
from .run_summary import Metrics, RunSummary
from .tables import fmt, md_table

#: The source of our own rows.
OURS = 'ours'


@dataclass(frozen=True)
class Row:
    """One table row: a label (a method or a model), where its numbers
    come from, and its values by column key (None: undefined / unknown).

    ``run``, ``setting``, ``eval_protocol`` and ``steps_done`` describe our
    rows in comparisons (empty elsewhere); ``citation`` says where a
    published row's numbers were read (:attr:`.Reference.citation`; empty
    for ours).
    """

    label: str
    source: str
    values: Mapping[str, Optional[float]]
    run: str = ''
    setting: str = ''
    eval_protocol: str = ''
    steps_done: str = ''
    citation: str = ''

    @property
    def source_cell(self) -> str:
        """``ours (<run>)`` in comparisons, else the source."""
        return f'{self.source} ({self.run})' if self.run else self.source


@dataclass(frozen=True)
class Column:
    """A table column: ``key`` of :attr:`Row.values`, or the name of a text
    field of :class:`Row` when ``text`` is True."""

    key: str
    title: str
    text: bool = False

    def cell(self, row: Row) -> str:
        """The Markdown cell of ``row``: ``–`` for an undefined value,
        empty for one the row does not have (e.g. unpublished)."""
        if self.text:
            return str(getattr(row, self.key))
        if self.key not in row.values:
            return ''
        return fmt(row.values[self.key])

    def value(self, row: Row):
        """The CSV value of ``row`` (unrounded)."""
        return getattr(row, self.key) if self.text else row.values.get(
            self.key)


#: old / new / all after a step, and the step's other metrics.
RESULT_COLUMNS: Tuple[Column,
                      ...] = (Column('old',
                                     'old'), Column('old_nobg', 'old w/o bg'),
                              Column('new',
                                     'new'), Column('step', 'this step'),
                              Column('all', 'all'), Column('hIoU', 'hIoU'),
                              Column('mPA', 'mPA'), Column('mCA', 'mCA'))


def result_columns(*keys: str) -> List[Column]:
    """The :data:`RESULT_COLUMNS` of ``keys``, in that order."""
    by_key = {c.key: c for c in RESULT_COLUMNS}
    return [by_key[k] for k in keys]


def render(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    """``rows`` as a Markdown table; text columns left, numbers right."""
    numeric_from = next((i for i, c in enumerate(columns) if not c.text),
                        len(columns))
    return md_table([c.title for c in columns],
                    [[c.cell(r) for c in columns] for r in rows],
                    numeric_from=numeric_from)


def cells(row: Row, columns: Sequence[Column]) -> list:
    """The CSV values of ``row``."""
    return [c.value(row) for c in columns]


def method_order(method: str) -> Tuple[int, str]:
    """Sort key: the paper's method order, other methods after."""
    return (METHODS.index(method) if method in METHODS else len(METHODS),
            method)


def result_values(metrics: Metrics) -> Dict[str, Optional[float]]:
    """The :data:`RESULT_COLUMNS` values of a step's metrics."""
    return dict(
        old=metrics.mIoU_old,
        old_nobg=metrics.mIoU_old_nobg,
        new=metrics.mIoU_new,
        step=metrics.mIoU_step,
        all=metrics.mIoU,
        hIoU=metrics.hIoU,
        mPA=metrics.mPA,
        mCA=metrics.mCA)


def reference_values(ref: Reference) -> Dict[str, Optional[float]]:
    """A reference's old (or old w/o bg for MiB), new, all and hIoU."""
    if ref.old_without_background:
        return dict(
            old_nobg=ref.result.old, new=ref.result.new, all=ref.result.all)
    return dict(
        old=ref.result.old,
        new=ref.result.new,
        all=ref.result.all,
        hIoU=ref.hiou)


def reference_row(ref: Reference, label: str) -> Row:
    """The row of a published result, labelled ``label``."""
    return Row(
        label,
        ref.source,
        reference_values(ref),
        setting=ref.condition.setting,
        eval_protocol=ref.condition.eval_protocol,
        citation=ref.citation)


def reference_step(ref: Reference, run: RunSummary) -> int:
    """The step of ``run`` that a reference's old/new/all describe: 0 for
    M0, the task's last step otherwise."""
    return 0 if ref.method == 'M0' else len(run.task_steps) - 1


def reaches(run: RunSummary, ref: Reference) -> bool:
    """Whether ``run`` stopped at the step the reference describes (a
    partial run is not compared with a published final result)."""
    return run.last.step == reference_step(ref, run)


def series_columns(step_labels: Sequence[str]) -> List[Column]:
    """Columns of the per-step table: mIoU after each step, then
    old / new / all after the last one."""
    return [Column(label, label)
            for label in step_labels] + result_columns('old', 'new', 'all')


def series_rows(runs: Sequence[Tuple[RunSummary, str]]) -> List[Row]:
    """The per-step table (the paper's Table 4 and the demo's table): per
    method, our runs (mIoU after each step, old/new/all after the last
    step run) and the published mIoU per step of the references that apply.

    Args:
        runs: ``(run, name)`` of incremental runs of one task; ``name``
            is shown as ``ours (<name>)`` unless empty.
    """
    rows = []
    for method in sorted({r.method for r, _ in runs}, key=method_order):
        mine = sorted((rn for rn in runs if rn[0].method == method),
                      key=lambda rn: rn[1])
        labels = mine[0][0].step_labels
        refs: Dict[str, Tuple[Reference, bool]] = {}
        for run, name in mine:
            values = {labels[s.step]: s.metrics.mIoU for s in run.steps}
            last = run.last.metrics
            values.update(old=last.mIoU_old, new=last.mIoU_new, all=last.mIoU)
            rows.append(Row(method, OURS, values, run=name))
            for ref in match_references(run).references:
                if ref.steps is not None:
                    seen = refs.get(ref.source, (ref, False))[1]
                    refs[ref.source] = (ref, seen or reaches(run, ref))
        for ref, at_end in refs.values():
            values = dict(zip(labels, ref.steps))
            if at_end:
                values.update(reference_values(ref))
            rows.append(Row(method, ref.source, values, citation=ref.citation))
    return rows


def citation_lines(rows: Sequence[Row], where: str = '') -> List[str]:
    """One Markdown list item per published row of ``rows`` saying where
    its numbers were read: ``- paper (VOC, R101), <where>FT: <citation>``
    (each row once, in table order)."""
    seen: Dict[Tuple[str, str], None] = {}
    for row in rows:
        if row.citation:
            seen.setdefault(
                (f'{row.source}, {where}{row.label}', row.citation))
    return [f'- {name}: {citation}.' for name, citation in seen]
