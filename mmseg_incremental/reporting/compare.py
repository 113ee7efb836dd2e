"""Several experiments in one table, methods as rows like the paper.

Runs are grouped by (dataset, task) (:func:`.comparison_rows.group_runs`).
Each group gets

- a per-step table: per run, mIoU after each step, then old / new / all
  after the last step (the paper's Table 4, the demo's table), with the
  paper's mIoU per step where it applies;
- a last-step table: every metric per run, in the paper's method order,
  the published rows that apply after ours (:mod:`.references`); the
  step-0 models of the runs appear as ``M0`` rows.

A joint run (one step, every class) is placed in every task group of its
dataset and scored with that task's old/new split, as the paper's
"M0(0-20)" rows are. The notes say where each published row's numbers
were read (:attr:`.Reference.citation`; also the ``citation`` column of
``comparison.csv``). ``comparison.md``, ``comparison.csv`` (last step) and
``comparison_steps.csv`` (mIoU per step) go to ``out_dir``; with
``images > 0`` also ``comparison.png`` (see :mod:`.prediction_figure`).
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

from .comparison_rows import Runs, entries, group_runs, last_step_rows
from .references import MIB_LABEL, PAPER_LABEL
from .rows import (RESULT_COLUMNS, Column, Row, cells, citation_lines, render,
                   series_columns, series_rows)
from .run_summary import RunSummary
from .tables import md_table, write_csv

METHOD = Column('label', 'method', text=True)
SOURCE = Column('source_cell', 'source', text=True)
#: The last-step table's columns.
LAST_STEP_COLUMNS = [
    METHOD, SOURCE,
    Column('setting', 'setting', text=True),
    Column('eval_protocol', 'eval', text=True),
    Column('steps_done', 'steps', text=True), *RESULT_COLUMNS
]


def run_names(work_dirs: Sequence[str]) -> List[str]:
    """Short unique names: the folder names, or the paths if they clash."""
    names = [osp.basename(osp.normpath(d)) for d in work_dirs]
    if len(set(names)) < len(names):
        names = [osp.normpath(d) for d in work_dirs]
    return names


def _runs_table(runs: Runs) -> List[str]:
    header = [
        'run', 'work dir', 'dataset', 'task', 'method', 'setting',
        'eval protocol'
    ]
    rows = [[
        name,
        str(run.work_dir), run.dataset, run.task, run.method, run.setting,
        run.eval_protocol
    ] for run, name in runs]
    return [
        f'# Comparison of {len(runs)} runs', '',
        md_table(header, rows, numeric_from=len(header)), ''
    ]


def _group_section(dataset: str, task: str, members: Runs) -> List[str]:
    """The per-step and last-step tables of one task, and one line per run
    without a published reference saying why."""
    out = []
    incremental = [(r, n) for r, n in members if not r.is_joint]
    if incremental:
        columns = [METHOD, SOURCE] + series_columns(
            incremental[0][0].step_labels)
        out += [
            f'## {dataset} {task}: mIoU after each step', '',
            render(series_rows(incremental), columns), ''
        ]
    group = entries(task, members)
    out += [
        f'## {dataset} {task}: every metric after the last step', '',
        render(last_step_rows(group), LAST_STEP_COLUMNS), ''
    ]
    why = [
        f'- {e.row.run} ({e.row.label}): {e.why_none}' for e in group
        if not e.references and e.why_none and e.row.label != 'M0'
    ]
    return out + why + ([''] if why else [])


def _group_rows(task: str, members: Runs) -> List[Row]:
    """The rows of one group's tables (per step, then last step)."""
    incremental = [(r, n) for r, n in members if not r.is_joint]
    return (series_rows(incremental) + last_step_rows(entries(task, members)))


def _notes(groups: 'OrderedDict[Tuple[str, str], Runs]') -> List[str]:
    """One paragraph: the columns, and the sources of the published rows
    shown; then where each published row's numbers were read."""
    rows = {
        key: _group_rows(key[1], members)
        for key, members in groups.items()
    }
    shown = {row.source for rs in rows.values() for row in rs}
    notes = [
        '"old" = S_0 with the background; joint runs are scored with '
        'the old/new split of the task they sit in; "–" = undefined, empty '
        '= not published.'
    ]
    if PAPER_LABEL in shown:
        notes.append(
            f'"{PAPER_LABEL}": Michieli & Zanuttigh 2019 (Pascal VOC 2012 '
            'val, DeepLab-v2, MSCOCO-pretrained ResNet-101); its hIoU is '
            'computed from its old and new. With another backbone or data '
            'compare the ordering of methods, not absolute values.')
    if MIB_LABEL in shown:
        notes.append(f'"{MIB_LABEL}": Cermelli et al. 2020, Table 1; its '
                     'old leaves the background out (compare with "old w/o '
                     'bg").')
    cited = [
        line for (d, t), rs in rows.items()
        for line in citation_lines(rs, f'{d} {t} ')
    ]
    if cited:
        cited = ['', 'Where the published numbers were read:', ''] + cited
    return [' '.join(notes)] + cited + ['']


def comparison_markdown(runs: Runs) -> str:
    """The Markdown of :func:`compare_runs` for ``(run, name)`` pairs."""
    lines = _runs_table(runs)
    groups = group_runs(runs)
    if len(groups) > 1:
        lines += [
            'These runs span several tasks: ' +
            ', '.join(f'{d} {t}' for d, t in groups) + '. Each task has '
            'its own tables; numbers of different tasks do not compare.', ''
        ]
    for (dataset, task), members in groups.items():
        lines += _group_section(dataset, task, members)
    return '\n'.join(lines + _notes(groups))


def _write_csvs(out_dir: str, runs: Runs) -> None:
    last, per_step = [], []
    for (dataset, task), members in group_runs(runs).items():
        for row in last_step_rows(entries(task, members)):
            last.append([dataset, task, row.label, row.source, row.run] +
                        cells(row, LAST_STEP_COLUMNS[2:]) + [row.citation])
        incremental = [(r, n) for r, n in members if not r.is_joint]
        labels = incremental[0][0].step_labels if incremental else []
        for row in series_rows(incremental):
            per_step += [[
                dataset, task, row.label, row.source, row.run, k,
                row.values.get(label)
            ] for k, label in enumerate(labels)]
    write_csv(
        osp.join(out_dir, 'comparison.csv'),
        ['dataset', 'task', 'method', 'source', 'run'] +
        [c.key for c in LAST_STEP_COLUMNS[2:]] + ['citation'], last)
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
    runs = list(
        zip([RunSummary.load(d) for d in work_dirs], run_names(work_dirs)))
    markdown = comparison_markdown(runs)
    from ..experiment.provenance import provenance_differences
    differ = provenance_differences([r.provenance for r, _ in runs])
    if len(runs) > 1 and differ:
        markdown += ('\n\n**Not like for like**: these runs differ in '
                     f'{"; ".join(differ)}.\n')
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, 'comparison.md'), 'w') as f:
            f.write(markdown)
        _write_csvs(out_dir, runs)
    if images:
        from .prediction_figure import draw_predictions
        draw_predictions(
            work_dirs, [f'{r.method}: {n}' for r, n in runs],
            osp.join(out_dir, 'comparison.png'),
            num_images=images,
            device=device)
    return markdown
