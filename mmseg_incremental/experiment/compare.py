"""Several experiments in one table, methods as rows like the paper.

Runs are grouped by (dataset, task). Each group gets

- a last-step table: old / old w/o bg / new / all / hIoU / mPA / mCA per
  run, in the paper's method order (FT, L'_D, EF, EF+L'_D, L''_D,
  L'_D+L''_D, M0, joint), the paper's row after ours where it has one
  (``paper (VOC, R101)``), MiB's re-run of ILT after ``disjoint`` runs of
  L'_D+L''_D; the step-0 models of the runs appear as ``M0`` rows;
- a per-step mIoU table (the paper's Table 4, mIoU only).

A joint run (one step, every class) is placed in every task group of its
dataset and scored with that task's old/new split, as the paper's
"M0(0-20)" rows are. ``comparison.md``, ``comparison.csv`` (last step) and
``comparison_steps.csv`` (mIoU per step) go to ``out_dir``; with
``images > 0`` also ``comparison.png`` (see :mod:`.prediction_figure`).
"""
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from .paper_results import (MIB_LABEL, MIB_METHODS, METHODS, PAPER_LABEL,
                            mib_rerun, paper_result, paper_step_miou)
from .run_results import (check_summary, harmonic, num, resplit, step_label,
                          task_steps)
from .tables import fmt, md_table, write_csv

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


def load_run(work_dir: str) -> dict:
    """The ``summary.json`` of ``work_dir`` with its directory added as
    ``work_dir``."""
    path = osp.join(work_dir, 'summary.json')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} does not exist: pass the work dir of an experiment run '
            'with tools/train_incremental.py (it writes summary.json after '
            'each step).')
    with open(path) as f:
        summary = json.load(f)
    check_summary(summary, where=path)
    return dict(summary, work_dir=work_dir)


def run_names(work_dirs: Sequence[str]) -> List[str]:
    """Short unique names: the folder names, or the paths if they clash."""
    names = [osp.basename(osp.normpath(d)) for d in work_dirs]
    if len(set(names)) < len(names):
        names = [osp.normpath(d) for d in work_dirs]
    return names


def _is_joint(run: dict) -> bool:
    return len(task_steps(run)) == 1


def _method_key(method: str) -> Tuple[int, str]:
    return (METHODS.index(method) if method in METHODS else len(METHODS),
            method)


def _our_row(run: dict, name: str) -> Row:
    last = run['steps'][-1]
    m = last['metrics']
    values = {
        'old': num(m.get('mIoU_old')),
        'old_nobg': num(m.get('mIoU_old_nobg')),
        'new': num(m.get('mIoU_new')),
        'all': num(m.get('mIoU')),
        'hIoU': num(m.get('hIoU')),
        'mPA': num(m.get('mPA')),
        'mCA': num(m.get('mCA'))
    }
    return Row(str(run.get('method')), OURS, name, str(run.get('setting')),
               str(run.get('eval_protocol')),
               f'{last["step"] + 1}/{len(task_steps(run))}', values)


def _joint_row(run: dict, name: str, old_ids: Sequence[int]) -> Row:
    """A joint run scored with another task's old/new split."""
    row = _our_row(run, name)
    entry = run['steps'][-1]
    split = resplit(run, entry, old_ids)
    nobg = resplit(run, entry, [c for c in old_ids if c != 0])
    if split is None:  # no per-class IoU: only "all" is known
        values = dict(row.values, old=None, old_nobg=None, new=None,
                      hIoU=None)
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
    rows = []
    for run, names in merged.values():
        m = run['steps'][0]['metrics']
        rows.append(
            Row('M0', OURS, ', '.join(names), str(run.get('setting')),
                str(run.get('eval_protocol')), f'1/{len(task_steps(run))}', {
                    'old': num(m.get('mIoU_old')),
                    'old_nobg': num(m.get('mIoU_old_nobg')),
                    'new': None,
                    'all': num(m.get('mIoU')),
                    'hIoU': None,
                    'mPA': num(m.get('mPA')),
                    'mCA': num(m.get('mCA'))
                }))
    return rows


def _reference_rows(dataset: str, task: str, method: str,
                    ours: List[Row]) -> List[Row]:
    """The paper's row (and MiB's re-run) for ``method``, if any."""
    out = []
    paper = paper_result(dataset, task, method)
    if paper is not None:
        out.append(
            Row(method, PAPER_LABEL, '', 'sequential', 'seen_only', '',
                dict(old=paper.old, old_nobg=None, new=paper.new,
                     all=paper.all, hIoU=harmonic(paper.old, paper.new),
                     mPA=None, mCA=None)))
    settings = {r.setting for r in ours}
    mib = mib_rerun(dataset, task, method, 'disjoint')
    if mib is not None and 'disjoint' in settings:
        out.append(
            Row(method, MIB_LABEL, '', 'disjoint', 'mask_unseen', '',
                dict(old=None, old_nobg=mib.old, new=mib.new, all=mib.all,
                     hIoU=None, mPA=None, mCA=None)))
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
            keys = [k for k in groups if k[0] == str(run.get('dataset'))
                    and not _is_joint(groups[k][0][0])]
            for key in keys or [(str(run.get('dataset')),
                                 str(run.get('task')))]:
                groups.setdefault(key, []).append((run, name))
    return groups


def last_step_rows(dataset: str, task: str,
                   runs: List[Tuple[dict, str]]) -> List[Row]:
    """The rows of one group's last-step table, in the paper's order."""
    incremental = [(r, n) for r, n in runs if not _is_joint(r)]
    old_ids = task_steps(incremental[0][0])[0] if incremental else None
    ours = [
        _joint_row(r, n, old_ids) if _is_joint(r) and old_ids is not None
        else _our_row(r, n) for r, n in runs
    ] + _m0_rows(incremental)
    rows = []
    for method in sorted({r.method for r in ours}, key=_method_key):
        mine = sorted((r for r in ours if r.method == method),
                      key=lambda r: (r.setting, r.run))
        rows += mine + _reference_rows(dataset, task, method, mine)
    return rows


def step_rows(dataset: str, task: str, runs: List[Tuple[dict, str]]
              ) -> Tuple[List[str], List[list]]:
    """Header and rows (method, source, run, mIoU per step) of one group's
    per-step table; joint runs are left out."""
    incremental = [(r, n) for r, n in runs if not _is_joint(r)]
    if not incremental:
        return [], []
    steps = task_steps(incremental[0][0])
    labels = [step_label(dict(step=k, new_classes=ids))
              for k, ids in enumerate(steps)]
    rows, methods = [], []
    for run, name in sorted(incremental,
                            key=lambda rn: (_method_key(
                                str(rn[0].get('method'))), rn[1])):
        by_step = {e['step']: num(e['metrics'].get('mIoU'))
                   for e in run['steps']}
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


def comparison_markdown(runs: List[dict], names: List[str]) -> str:
    """The Markdown of :func:`compare_runs`."""
    lines = [f'# Comparison of {len(runs)} runs', '']
    lines += [md_table(
        ['run', 'work dir', 'dataset', 'task', 'method', 'setting',
         'eval protocol'],
        [[n, r['work_dir'], str(r.get('dataset')), str(r.get('task')),
          str(r.get('method')), str(r.get('setting')),
          str(r.get('eval_protocol'))] for r, n in zip(runs, names)],
        numeric_from=7), '']
    groups = group_runs(runs, names)
    if len(groups) > 1:
        lines += [
            'These runs span several tasks: '
            + ', '.join(f'{d} {t}' for d, t in groups) + '. Each task has '
            'its own tables; numbers of different tasks do not compare.', ''
        ]
    for (dataset, task), members in groups.items():
        lines += [f'## {dataset} {task}: mIoU after the last step', '']
        rows = [[
            r.method, r.source, r.run, r.setting, r.eval_protocol, r.steps
        ] + [fmt(r.values[k]) for k in VALUE_KEYS]
                for r in last_step_rows(dataset, task, members)]
        lines += [md_table(['method', 'source', 'run', 'setting', 'eval',
                            'steps', *VALUE_TITLES], rows, numeric_from=6),
                  '']
        header, srows = step_rows(dataset, task, members)
        if header and len(header) > 4:
            lines += [f'## {dataset} {task}: mIoU after each step', '',
                      md_table(header, [r[:3] + [fmt(v) for v in r[3:]]
                                        for r in srows], numeric_from=3), '']
    lines += [
        f'"{PAPER_LABEL}": Michieli & Zanuttigh 2019 (Pascal VOC 2012 val, '
        'DeepLab-v2, MSCOCO-pretrained ResNet-101); its hIoU is computed '
        f'from its old and new. "{MIB_LABEL}": Cermelli et al. 2020, old '
        'without the background. "old" = S_0 with the background; joint '
        'runs are scored with the old/new split of the task they sit in. '
        'With another backbone or data compare the ordering of methods, not '
        'absolute values.', ''
    ]
    return '\n'.join(lines)


def _write_csvs(out_dir: str, runs: List[dict], names: List[str]) -> None:
    last, per_step = [], []
    for (dataset, task), members in group_runs(runs, names).items():
        for r in last_step_rows(dataset, task, members):
            last.append([dataset, task, r.method, r.source, r.run, r.setting,
                         r.eval_protocol, r.steps] +
                        [r.values[k] for k in VALUE_KEYS])
        header, rows = step_rows(dataset, task, members)
        for row in rows:
            for k, value in enumerate(row[3:]):
                per_step.append([dataset, task, *row[:3], k, value])
    write_csv(osp.join(out_dir, 'comparison.csv'),
              ['dataset', 'task', 'method', 'source', 'run', 'setting',
               'eval_protocol', 'steps', *VALUE_KEYS], last)
    write_csv(osp.join(out_dir, 'comparison_steps.csv'),
              ['dataset', 'task', 'method', 'source', 'run', 'step', 'mIoU'],
              per_step)


def compare_runs(work_dirs: Sequence[str],
                 out_dir: Optional[str] = None,
                 images: int = 0,
                 device: str = 'cpu') -> str:
    """Compare the experiments in ``work_dirs``.

    Args:
        work_dirs (Sequence[str]): Work dirs holding ``summary.json``.
        out_dir (str, optional): Where ``comparison.md``, the CSVs and the
            picture go. Defaults to None (nothing written).
        images (int): Number of val images of the Fig. 3-style picture
            (image | ground truth | each run's final prediction); 0 for
            none. Needs ``out_dir``. Defaults to 0.
        device (str): Device for the predictions. Defaults to ``'cpu'``.

    Returns:
        str: The comparison as Markdown.
    """
    if not work_dirs:
        raise ValueError('Pass at least one work dir to compare.')
    if images and not out_dir:
        raise ValueError(f'images={images} writes comparison.png: also '
                         'pass out_dir (--out DIR).')
    if images < 0:
        raise ValueError(f'images must be >= 0, got {images}.')
    runs = [load_run(d) for d in work_dirs]
    names = run_names(work_dirs)
    markdown = comparison_markdown(runs, names)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, 'comparison.md'), 'w') as f:
            f.write(markdown)
        _write_csvs(out_dir, runs, names)
    if images:
        from .prediction_figure import draw_predictions
        draw_predictions(work_dirs, names, osp.join(out_dir,
                                                    'comparison.png'),
                         num_images=images, device=device)
    return markdown
