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
from typing import List, Optional, Sequence

from .comparison_rows import (VALUE_KEYS, VALUE_TITLES, group_runs,
                              last_step_rows, step_rows)
from .paper_results import MIB_LABEL, PAPER_LABEL
from .run_results import check_summary
from .tables import fmt, md_table, write_csv


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


def comparison_markdown(runs: List[dict], names: List[str]) -> str:
    """The Markdown of :func:`compare_runs`."""
    lines = [f'# Comparison of {len(runs)} runs', '']
    lines += [
        md_table([
            'run', 'work dir', 'dataset', 'task', 'method', 'setting',
            'eval protocol'
        ], [[
            n, r['work_dir'],
            str(r.get('dataset')),
            str(r.get('task')),
            str(r.get('method')),
            str(r.get('setting')),
            str(r.get('eval_protocol'))
        ] for r, n in zip(runs, names)],
                 numeric_from=7), ''
    ]
    groups = group_runs(runs, names)
    if len(groups) > 1:
        lines += [
            'These runs span several tasks: ' +
            ', '.join(f'{d} {t}' for d, t in groups) + '. Each task has '
            'its own tables; numbers of different tasks do not compare.', ''
        ]
    for (dataset, task), members in groups.items():
        lines += [f'## {dataset} {task}: mIoU after the last step', '']
        rows = [
            [r.method, r.source, r.run, r.setting, r.eval_protocol, r.steps] +
            [fmt(r.values[k]) for k in VALUE_KEYS]
            for r in last_step_rows(dataset, task, members)
        ]
        lines += [
            md_table([
                'method', 'source', 'run', 'setting', 'eval', 'steps',
                *VALUE_TITLES
            ],
                     rows,
                     numeric_from=6), ''
        ]
        header, srows = step_rows(dataset, task, members)
        if header and len(header) > 4:
            lines += [
                f'## {dataset} {task}: mIoU after each step', '',
                md_table(
                    header, [r[:3] + [fmt(v) for v in r[3:]] for r in srows],
                    numeric_from=3), ''
            ]
    text = '\n'.join(lines)
    notes = [
        '"old" = S_0 with the background; joint runs are scored with '
        'the old/new split of the task they sit in.'
    ]
    if PAPER_LABEL in text:
        notes.append(
            f'"{PAPER_LABEL}": Michieli & Zanuttigh 2019 (Pascal VOC 2012 '
            'val, DeepLab-v2, MSCOCO-pretrained ResNet-101); its hIoU is '
            'computed from its old and new. With another backbone or data '
            'compare the ordering of methods, not absolute values.')
    if MIB_LABEL in text:
        notes.append(f'"{MIB_LABEL}": Cermelli et al. 2020; its old leaves '
                     'the background out (compare with "old w/o bg").')
    lines += [' '.join(notes), '']
    return '\n'.join(lines)


def _write_csvs(out_dir: str, runs: List[dict], names: List[str]) -> None:
    last, per_step = [], []
    for (dataset, task), members in group_runs(runs, names).items():
        for r in last_step_rows(dataset, task, members):
            last.append([
                dataset, task, r.method, r.source, r.run, r.setting,
                r.eval_protocol, r.steps
            ] + [r.values[k] for k in VALUE_KEYS])
        header, rows = step_rows(dataset, task, members)
        for row in rows:
            for k, value in enumerate(row[3:]):
                per_step.append([dataset, task, *row[:3], k, value])
    write_csv(
        osp.join(out_dir, 'comparison.csv'), [
            'dataset', 'task', 'method', 'source', 'run', 'setting',
            'eval_protocol', 'steps', *VALUE_KEYS
        ], last)
    write_csv(
        osp.join(out_dir, 'comparison_steps.csv'),
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
        titles = [f'{r.get("method")}: {n}' for r, n in zip(runs, names)]
        draw_predictions(
            work_dirs,
            titles,
            osp.join(out_dir, 'comparison.png'),
            num_images=images,
            device=device)
    return markdown
