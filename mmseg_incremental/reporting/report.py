"""``D/report.md``, ``D/metrics.csv`` and the plots of one experiment.

The Markdown report follows the paper's table shapes:

- per-class IoU after the last step (Tables 1-3): the old classes, their
  mean ("old"), the new classes, their mean ("new"), "all", mPA, mCA;
- mIoU after every step, then old / new / all (Table 4; the demo's table);
- every metric after every step (old, old w/o bg, new, this step, all,
  hIoU, mPA, mCA);
- a joint VOC model split as the paper's tasks (its M0(0-20) rows);

with the published rows of :mod:`.references` that were measured the way
this run was, and one line saying why there are none otherwise; the notes
say where each published row's numbers were read (its citation).
"""
import os
import os.path as osp
from typing import List, Union

from ..utils.atomic_io import atomic_path, write_text
from .plots import plot_iou_per_class, plot_miou_per_step
from .references import (MIB_LABEL, PAPER_LABEL, ReferenceMatch,
                         match_references)
from .rows import (OURS, RESULT_COLUMNS, Column, Row, reaches, reference_row,
                   render, result_columns, result_values, series_columns,
                   series_rows)
from .run_summary import METRIC_KEYS, ClassIoU, RunSummary, harmonic
from .tables import fmt, join_ids, md_table, write_csv

#: Above this many classes the per-class table lists classes as rows.
MAX_CLASS_COLUMNS = 30
#: The paper's splits of a jointly trained VOC model (its "M0(0-20)" rows).
JOINT_SPLITS = [
    ('19-1', '19-1', range(20)),
    ('15-5 / 15-1', '15-5', range(16)),
]
LABEL = Column('label', '', text=True)
SOURCE = Column('source_cell', 'source', text=True)


def _shown_references(run: RunSummary) -> ReferenceMatch:
    """The references of the header and notes: a joint VOC run's are those
    of the paper's task splits (:func:`_joint_section`)."""
    if run.dataset != 'voc' or not run.is_joint:
        return match_references(run)
    matches = [match_references(run, task=t) for _, t, _ in JOINT_SPLITS]
    refs = {r.source: r for m in matches for r in m.references}
    return ReferenceMatch(
        tuple(refs.values()), '' if refs else matches[0].why_none)


def _header(run: RunSummary, match: ReferenceMatch) -> List[str]:
    fields = {
        'dataset': run.dataset,
        'task': run.task,
        'method': run.method,
        'setting': run.setting,
        'eval protocol': run.eval_protocol,
        'evaluated on': run.evaluation,
        'config': run.config,
        'steps done': f'{run.last.step + 1} of {len(run.task_steps)}',
    }
    sources = ', '.join(r.source for r in match.references)
    if sources:
        refs = (f'References: {sources} (measured with this setting, '
                'protocol and method config).')
    else:
        refs = f'References: none, {match.why_none}'
    return [
        f'# {run.dataset} {run.task}: {run.method}', '',
        md_table(['', 'value'], [[k, str(v)] for k, v in fields.items()],
                 numeric_from=2), '', refs, ''
    ]


def _class_rows_section(run: RunSummary) -> List[str]:
    """More classes than columns fit (ADE): one row per class."""
    rows = [[c.name, str(c.class_id),
             str(c.learnt_at),
             fmt(c.iou)] for c in run.class_ious(run.last)]
    ours = Row(OURS, OURS, result_values(run.last.metrics))
    columns = [LABEL] + result_columns('old', 'new', 'all', 'mPA', 'mCA')
    return [
        md_table(['class', 'id', 'learnt at step', 'IoU'], rows), '',
        render([ours], columns), ''
    ]


def _class_columns(classes: List[ClassIoU]) -> List[Column]:
    """Tables 1-3: old classes, "old", new classes, "new", "all", mPA,
    mCA; a class's IoU is the value ``IoU.<name>``."""
    old = [
        Column(f'IoU.{c.name}', c.name) for c in classes if c.learnt_at == 0
    ]
    new = [
        Column(f'IoU.{c.name}', c.name) for c in classes if c.learnt_at != 0
    ]
    return ([LABEL] + old + result_columns('old') + new +
            (result_columns('new') if new else []) +
            result_columns('all', 'mPA', 'mCA'))


def _per_class_section(run: RunSummary, match: ReferenceMatch) -> List[str]:
    classes = run.class_ious(run.last)
    out = [
        f'## Per-class IoU after {run.last.label} (the paper\'s Tables 1-3)',
        ''
    ]
    if not classes:
        return out + ['No per-class IoU recorded for this step.', '']
    if len(classes) > MAX_CLASS_COLUMNS:
        return out + _class_rows_section(run)
    values = result_values(run.last.metrics)
    values.update({f'IoU.{c.name}': c.iou for c in classes})
    rows = [Row(OURS, OURS, values)]
    paper = match.get(PAPER_LABEL)
    if paper is not None and reaches(run, paper):
        rows.append(reference_row(paper, PAPER_LABEL))
    out += [render(rows, _class_columns(classes)), '']
    if any(c.learnt_at is None for c in classes):
        out += [
            'The IoU names do not match `seen_classes`: the step of each '
            'class is unknown, all are listed as new.', ''
        ]
    return out


def _series_section(run: RunSummary) -> List[str]:
    columns = [Column('label', 'method', text=True), SOURCE]
    return [
        '## mIoU after each step (the paper\'s Table 4)', '',
        render(
            series_rows([(run, '')]),
            columns + series_columns(run.step_labels)), ''
    ]


def _steps_section(run: RunSummary, match: ReferenceMatch) -> List[str]:
    rows = [Row(s.label, OURS, result_values(s.metrics)) for s in run.steps]
    rows += [
        reference_row(ref, run.last.label) for ref in match.references
        if reaches(run, ref)
    ]
    columns = [Column('label', 'model', text=True), SOURCE]
    return [
        '## Every metric after each step', '',
        render(rows, columns + list(RESULT_COLUMNS)), ''
    ]


def _joint_section(run: RunSummary) -> List[str]:
    """A joint VOC model scored with the paper's old/new splits."""
    if run.dataset != 'voc' or not run.is_joint or \
            len(run.last.seen_classes) != 21:
        return []
    rows = []
    for label, task, old_ids in JOINT_SPLITS:
        ours = run.resplit(run.last, old_ids)
        if ours is None:
            continue
        values = dict(ours._asdict(), hIoU=harmonic(ours.old, ours.new))
        rows.append(Row(label, OURS, values))
        paper = match_references(run, task=task).get(PAPER_LABEL)
        if paper is not None:
            rows.append(reference_row(paper, label))
    if not rows:
        return []
    metric = {c.key: c for c in RESULT_COLUMNS}
    columns = [Column('label', 'split', text=True), SOURCE
               ] + [metric[k] for k in ('old', 'new', 'all', 'hIoU')]
    return [
        '## The joint model split as the paper\'s tasks (its M0(0-20) rows)',
        '',
        render(rows, columns), ''
    ]


def _notes(run: RunSummary, match: ReferenceMatch) -> List[str]:
    out = [
        '## Notes', '',
        '- mIoU in %. "old" = the step-0 classes S_0 with the background '
        '(the paper\'s 0-19 / 0-15), "old w/o bg" the same without it '
        '(MiB\'s 1-19 / 1-15), "new" = every class added since, "this '
        'step" = U_k, hIoU = harmonic mean of old and new; "–" = '
        'undefined (no new class yet, or a class absent from labels and '
        'predictions), empty = not published.'
    ]
    if run.provenance:
        p = run.provenance
        commit = p.get('git_commit')
        dirty = ' (uncommitted changes)' if p.get('git_dirty') else ''
        code = f'git {commit[:10]}{dirty}' if commit else 'no git checkout'
        out.append(
            f'- Produced by mmseg_incremental {p.get("version")} ({code}), '
            f'torch {p.get("torch")}, mmcv {p.get("mmcv")}, mmengine '
            f'{p.get("mmengine")}, mmseg {p.get("mmseg")}; {p.get("device")} '
            f'x {p.get("world_size")}, seed {p.get("seed")}, step-0 data '
            f'{str(p.get("data"))[:12]}.')
    sources = {r.source for r in match.references}
    if PAPER_LABEL in sources:
        out.append(
            f'- "{PAPER_LABEL}": Michieli & Zanuttigh 2019, Pascal VOC 2012 '
            'val, DeepLab-v2 with an MSCOCO-pretrained ResNet-101; its hIoU '
            'is computed here from its old and new. "ours" comes from the '
            'config above: with another backbone or data compare trends '
            '(the ordering of methods), not absolute values.')
    if MIB_LABEL in sources:
        out.append(f'- "{MIB_LABEL}": Cermelli et al. 2020, Table 1; its '
                   'old leaves the background out (compare with "old w/o '
                   'bg").')
    if match.references and not any(reaches(run, r) for r in match.references):
        out.append('- The published old / new / all describe the task\'s '
                   'last step: shown once this run reaches it.')
    if match.references:
        out.append('- Where the published numbers were read:')
        out += [
            f'  - {r.source}, {r.task} {r.method}: {r.citation}.'
            for r in match.references
        ]
    return out + ['']


def _write_metrics_csv(path: str, run: RunSummary) -> None:
    """One row per step: the step metrics, then ``IoU.<class>`` of every
    class seen in any step (empty before the class is learnt)."""
    names: List[str] = []
    for s in run.steps:
        names += [n for n in s.metrics.IoU if n not in names]
    header = (['step', 'model', 'new_classes', 'seen_classes'] +
              list(METRIC_KEYS) + [f'IoU.{n}' for n in names])
    rows = [
        [s.step, s.label,
         join_ids(s.new_classes),
         join_ids(s.seen_classes)] +
        [getattr(s.metrics, k)
         for k in METRIC_KEYS] + [s.metrics.IoU.get(n) for n in names]
        for s in run.steps
    ]
    write_csv(path, header, rows)


def write_report(work_dir: str, summary: Union[dict, RunSummary]) -> None:
    """Write ``report.md``, ``metrics.csv``, ``miou_per_step.png`` and
    ``iou_per_class.png`` into ``work_dir``.

    Args:
        work_dir (str): The experiment's work dir.
        summary (dict | RunSummary): The experiment's summary: the dict
            that ``write_summary`` returns (the content of
            ``summary.json``) or its parsed form.
    """
    run = summary if isinstance(summary, RunSummary) else \
        RunSummary.from_dict(summary)
    os.makedirs(work_dir, exist_ok=True)
    match = match_references(run)
    shown = _shown_references(run)
    with_steps = [r for r in match.references if r.steps is not None]
    # Every file through a temporary one: a failed write (a full disk)
    # leaves the previous version intact.
    with atomic_path(osp.join(work_dir, 'miou_per_step.png')) as tmp:
        plot_miou_per_step(run, tmp, with_steps[0] if with_steps else None)
    with atomic_path(osp.join(work_dir, 'iou_per_class.png')) as tmp:
        plot_iou_per_class(run, tmp)
    lines = (
        _header(run, shown) + _per_class_section(run, match) +
        _series_section(run) + _steps_section(run, match) +
        _joint_section(run) + [
            '## Plots', '', '![mIoU after each step](miou_per_step.png)', '',
            '![Per-class IoU after the last step](iou_per_class.png)', ''
        ] + _notes(run, shown))
    write_text(osp.join(work_dir, 'report.md'), '\n'.join(lines))
    with atomic_path(osp.join(work_dir, 'metrics.csv')) as tmp:
        _write_metrics_csv(tmp, run)
