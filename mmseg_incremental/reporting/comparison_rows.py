"""The last-step rows of a comparison: one per run, the step-0 models of
the runs as ``M0`` rows, and the published rows that apply (see
:mod:`.compare`).

Runs are grouped by (dataset, task); within a group rows follow the
paper's method order, ours first (by setting, then run), then the
references that apply to at least one of them. Identical step-0 models are
merged into one ``M0`` row; a joint run is scored with the group task's
old/new split.
"""
import json
from collections import OrderedDict
from dataclasses import replace
from typing import Dict, List, NamedTuple, Sequence, Tuple

from .references import REFERENCES, Reference, match_references
from .rows import (OURS, Row, method_order, reaches, reference_row,
                   result_values)
from .run_summary import RunSummary, harmonic

#: ``(run, name)`` pairs.
Runs = List[Tuple[RunSummary, str]]


class Entry(NamedTuple):
    """One of our rows, the references that apply to it and, when none
    does, why."""

    row: Row
    references: Tuple[Reference, ...]
    why_none: str


def group_runs(runs: Runs) -> 'OrderedDict[Tuple[str, str], Runs]':
    """(dataset, task) -> runs, joint runs in every task group of their
    dataset (or in their own group if their dataset has none)."""
    groups: 'OrderedDict[Tuple[str, str], Runs]' = OrderedDict()
    for run, name in runs:
        if not run.is_joint:
            groups.setdefault((run.dataset, run.task), []).append((run, name))
    tasks = list(groups)
    for run, name in runs:
        if run.is_joint:
            keys = [k for k in tasks if k[0] == run.dataset]
            for key in keys or [(run.dataset, run.task)]:
                groups.setdefault(key, []).append((run, name))
    return groups


def _our_row(run: RunSummary, name: str) -> Row:
    return Row(run.method, OURS, result_values(run.last.metrics), name,
               run.setting, run.eval_protocol,
               f'{run.last.step + 1}/{len(run.task_steps)}')


def _entry(run: RunSummary, name: str) -> Entry:
    match = match_references(run)
    refs = tuple(r for r in match.references if reaches(run, r))
    return Entry(_our_row(run, name), refs, match.why_none)


def _joint_entry(run: RunSummary, name: str, task: str,
                 old_ids: Sequence[int]) -> Entry:
    """A joint run scored with ``task``'s old/new split."""
    row = _our_row(run, name)
    values = dict(row.values, old=None, old_nobg=None, new=None, hIoU=None)
    values.pop('step')  # U_K of the split is not the joint step's
    split = run.resplit(run.last, old_ids)
    if split is not None:  # else only "all" is known
        values.update(
            old=split.old,
            old_nobg=run.resplit(run.last, [c for c in old_ids if c != 0]).old,
            new=split.new,
            hIoU=harmonic(split.old, split.new))
    match = match_references(run, task=task)
    return Entry(replace(row, values=values), match.references, match.why_none)


def _m0_entries(runs: Runs) -> List[Entry]:
    """The step-0 models of incremental runs, identical ones (same
    metrics, setting and protocol) merged."""
    merged: Dict[str, Tuple[RunSummary, List[str]]] = OrderedDict()
    for run, name in runs:
        if run.method == 'M0' or len(run.steps) < 2:
            continue
        key = json.dumps(
            [run.setting, run.eval_protocol, run.steps[0].metrics.to_dict()],
            sort_keys=True)
        merged.setdefault(key, (run, []))[1].append(name)
    out = []
    for run, names in merged.values():
        row = Row('M0', OURS, result_values(run.steps[0].metrics),
                  ', '.join(names), run.setting, run.eval_protocol,
                  f'1/{len(run.task_steps)}')
        match = match_references(run, method='M0')
        out.append(Entry(row, match.references, match.why_none))
    return out


def entries(task: str, runs: Runs) -> List[Entry]:
    """Our rows of one group, unsorted."""
    incremental = [(r, n) for r, n in runs if not r.is_joint]
    old_ids = incremental[0][0].task_steps[0] if incremental else None
    out = [
        _joint_entry(r, n, task, old_ids)
        if r.is_joint and old_ids is not None else _entry(r, n)
        for r, n in runs
    ]
    return out + _m0_entries(incremental)


def last_step_rows(entries_: Sequence[Entry]) -> List[Row]:
    """The rows of one group's last-step table, in the paper's order: per
    method our rows, then each reference that applies to one of them."""
    rows = []
    for method in sorted({e.row.label for e in entries_}, key=method_order):
        mine = sorted((e for e in entries_ if e.row.label == method),
                      key=lambda e: (e.row.setting, e.row.run))
        refs = {r for e in mine for r in e.references}
        rows += [e.row for e in mine]
        rows += [
            reference_row(r, method)
            for r in sorted(refs, key=REFERENCES.index)
        ]
    return rows
