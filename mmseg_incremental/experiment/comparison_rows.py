"""The rows of the comparison tables: one per run and method, the paper's
and MiB's numbers beside (see :mod:`.compare`).

Runs are grouped by (dataset, task); within a group rows follow the
paper's method order, ours first, then the paper's row, then MiB's re-run.
The step-0 models of a group's runs become ``M0`` rows (identical ones
merged); a joint run is scored with the group task's old/new split.
"""
import json
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from .paper_results import (MIB_LABEL, METHODS, PAPER_LABEL, mib_rerun,
                            paper_result, paper_step_miou)
from .run_results import harmonic, num, resplit, step_label, task_steps

OURS = 'ours'
VALUE_KEYS = ('old', 'old_nobg', 'new', 'all', 'hIoU', 'mPA', 'mCA')
VALUE_TITLES = ('old', 'old w/o bg', 'new', 'all', 'hIoU', 'mPA', 'mCA')


class Row(NamedTuple):
    """One row of the last-step table."""

    method: str
    source: str
    run: str
    setting: str
    eval_protocol: str
    steps: str
    values: Dict[str, Optional[float]]


def _is_joint(run: dict) -> bool:
    return len(task_steps(run)) == 1


def _method_key(method: str) -> Tuple[int, str]:
    return (METHODS.index(method) if method in METHODS else len(METHODS),
            method)


def _values(metrics: dict) -> Dict[str, Optional[float]]:
    """The table's values from a step's metrics."""
    return dict(
        old=num(metrics.get('mIoU_old')),
        old_nobg=num(metrics.get('mIoU_old_nobg')),
        new=num(metrics.get('mIoU_new')),
        all=num(metrics.get('mIoU')),
        hIoU=num(metrics.get('hIoU')),
        mPA=num(metrics.get('mPA')),
        mCA=num(metrics.get('mCA')))


def _our_row(run: dict, name: str) -> Row:
    last = run['steps'][-1]
    return Row(
        str(run.get('method')), OURS, name, str(run.get('setting')),
        str(run.get('eval_protocol')),
        f'{last["step"] + 1}/{len(task_steps(run))}', _values(last['metrics']))


def _joint_row(run: dict, name: str, old_ids: Sequence[int]) -> Row:
    """A joint run scored with another task's old/new split."""
    row = _our_row(run, name)
    entry = run['steps'][-1]
    split = resplit(run, entry, old_ids)
    nobg = resplit(run, entry, [c for c in old_ids if c != 0])
    if split is None:  # no per-class IoU: only "all" is known
        values = dict(row.values, old=None, old_nobg=None, new=None, hIoU=None)
    else:
        values = dict(
            row.values,
            old=split.old,
            old_nobg=nobg.old,
            new=split.new,
            hIoU=harmonic(split.old, split.new))
    return row._replace(values=values)


def _m0_rows(runs: List[Tuple[dict, str]]) -> List[Row]:
    """The step-0 models of the runs, identical ones merged."""
    merged: 'OrderedDict[str, Tuple[dict, List[str]]]' = OrderedDict()
    for run, name in runs:
        if run.get('method') == 'M0' or len(run['steps']) < 2:
            continue
        entry = run['steps'][0]
        key = json.dumps(entry['metrics'], sort_keys=True)
        merged.setdefault(key, (run, []))[1].append(name)
    return [
        Row('M0', OURS, ', '.join(names), str(run.get('setting')),
            str(run.get('eval_protocol')), f'1/{len(task_steps(run))}',
            dict(_values(run['steps'][0]['metrics']), new=None, hIoU=None))
        for run, names in merged.values()
    ]


def _reference_rows(dataset: str, task: str, method: str,
                    ours: List[Row]) -> List[Row]:
    """The paper's row (and MiB's re-run) for ``method``, if any."""
    out = []
    paper = paper_result(dataset, task, method)
    if paper is not None:
        out.append(
            Row(
                method, PAPER_LABEL, '', 'sequential', 'seen_only', '',
                dict(
                    old=paper.old,
                    old_nobg=None,
                    new=paper.new,
                    all=paper.all,
                    hIoU=harmonic(paper.old, paper.new),
                    mPA=None,
                    mCA=None)))
    settings = {r.setting for r in ours}
    mib = mib_rerun(dataset, task, method, 'disjoint')
    if mib is not None and 'disjoint' in settings:
        out.append(
            Row(
                method, MIB_LABEL, '', 'disjoint', 'mask_unseen', '',
                dict(
                    old=None,
                    old_nobg=mib.old,
                    new=mib.new,
                    all=mib.all,
                    hIoU=None,
                    mPA=None,
                    mCA=None)))
    return out


def group_runs(runs: List[dict],
               names: List[str]) -> 'OrderedDict[Tuple[str, str], list]':
    """(dataset, task) -> [(run, name)] with joint runs in every task group
    of their dataset (or in their own group if their dataset has none)."""
    groups: 'OrderedDict[Tuple[str, str], list]' = OrderedDict()
    for run, name in zip(runs, names):
        if not _is_joint(run):
            key = (str(run.get('dataset')), str(run.get('task')))
            groups.setdefault(key, []).append((run, name))
    for run, name in zip(runs, names):
        if _is_joint(run):
            dataset = str(run.get('dataset'))
            keys = [
                k for k in groups
                if k[0] == dataset and not _is_joint(groups[k][0][0])
            ]
            for key in keys or [(dataset, str(run.get('task')))]:
                groups.setdefault(key, []).append((run, name))
    return groups


def last_step_rows(dataset: str, task: str,
                   runs: List[Tuple[dict, str]]) -> List[Row]:
    """The rows of one group's last-step table, in the paper's order."""
    incremental = [(r, n) for r, n in runs if not _is_joint(r)]
    old_ids = task_steps(incremental[0][0])[0] if incremental else None
    ours = [
        _joint_row(r, n, old_ids)
        if _is_joint(r) and old_ids is not None else _our_row(r, n)
        for r, n in runs
    ] + _m0_rows(incremental)
    rows = []
    for method in sorted({r.method for r in ours}, key=_method_key):
        mine = sorted((r for r in ours if r.method == method),
                      key=lambda r: (r.setting, r.run))
        rows += mine + _reference_rows(dataset, task, method, mine)
    return rows


def step_rows(dataset: str, task: str,
              runs: List[Tuple[dict, str]]) -> Tuple[List[str], List[list]]:
    """Header and rows (method, source, run, mIoU per step) of one group's
    per-step table; joint runs are left out."""
    incremental = [(r, n) for r, n in runs if not _is_joint(r)]
    if not incremental:
        return [], []
    steps = task_steps(incremental[0][0])
    labels = [
        step_label(dict(step=k, new_classes=ids))
        for k, ids in enumerate(steps)
    ]
    rows, methods = [], []
    for run, name in sorted(
            incremental,
            key=lambda rn: (_method_key(str(rn[0].get('method'))), rn[1])):
        by_step = {
            e['step']: num(e['metrics'].get('mIoU'))
            for e in run['steps']
        }
        method = str(run.get('method'))
        rows.append([method, OURS, name] +
                    [by_step.get(k) for k in range(len(steps))])
        if method not in methods:
            methods.append(method)
            paper = paper_step_miou(dataset, task, method)
            if paper is not None:
                rows.append([method, PAPER_LABEL, ''] + [
                    paper[k] if k < len(paper) else None
                    for k in range(len(steps))
                ])
    return ['method', 'source', 'run'] + labels, rows
