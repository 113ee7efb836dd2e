"""``D/report.md``, ``D/metrics.csv`` and the plots of one experiment.

The Markdown report follows the paper's table shapes:

- per-class IoU after the last step (Tables 1-3): the old classes, their
  mean ("old"), the new classes, their mean ("new"), "all", mPA, mCA;
- mIoU, mPA and mCA after every step (Table 4);
- old / new / all mIoU after every step, with hIoU;

with the paper's numbers (:mod:`.paper_results`) as extra rows labelled
``paper (VOC, R101)`` when the dataset is VOC and the paper has the row.
``metrics.csv`` holds one row per step; the plots are described in
:mod:`.plots`.
"""
import os
import os.path as osp
from typing import List, Optional

from .paper_results import (MIB_LABEL, PAPER_LABEL, OldNewAll, mib_rerun,
                            paper_result, paper_step_miou)
from .plots import plot_iou_per_class, plot_miou_per_step
from .run_results import (check_summary, class_ious, harmonic, is_final, num,
                          resplit, step_label, task_steps)
from .tables import fmt, join_ids, md_table, write_csv

#: Above this many classes the per-class table lists classes as rows.
MAX_CLASS_COLUMNS = 30
#: The step metrics of ``metrics.csv``, in this order.
CSV_METRICS = ('mIoU', 'mPA', 'mCA', 'mIoU_old', 'mIoU_old_nobg', 'mIoU_new',
               'mIoU_step', 'hIoU')
#: The paper's splits of a jointly trained VOC model (its "M0(0-20)" rows).
JOINT_SPLITS = (('19-1', list(range(20))), ('15-5 / 15-1', list(range(16))))


def final_paper_result(summary: dict) -> Optional[OldNewAll]:
    """The paper's old/new/all for this run's last step, if comparable:
    VOC, a row of the paper, and the run reached the task's last step (or
    is an M0 run that stopped after step 0)."""
    method = summary.get('method')
    last = summary['steps'][-1]['step']
    if not (is_final(summary) or (method == 'M0' and last == 0)):
        return None
    return paper_result(summary.get('dataset'), summary.get('task'), method)


def _mib_row(summary: dict) -> Optional[OldNewAll]:
    if not is_final(summary):
        return None
    return mib_rerun(
        summary.get('dataset'), summary.get('task'), summary.get('method'),
        summary.get('setting'))


def _header(summary: dict) -> List[str]:
    steps = task_steps(summary)
    done = summary['steps'][-1]['step']
    rows = [['dataset', str(summary.get('dataset'))],
            ['task', str(summary.get('task'))],
            ['method', str(summary.get('method'))],
            ['setting', str(summary.get('setting'))],
            ['eval protocol',
             str(summary.get('eval_protocol'))],
            ['config', str(summary.get('config'))],
            ['steps done', f'{done + 1} of {len(steps)}']]
    title = (f'# {summary.get("dataset")} {summary.get("task")}: '
             f'{summary.get("method")}')
    return [title, '', md_table(['', 'value'], rows, numeric_from=2), '']


def _per_class_section(summary: dict) -> List[str]:
    entry = summary['steps'][-1]
    m = entry['metrics']
    classes = class_ious(summary, entry)
    out = [
        f'## Per-class IoU after {step_label(entry)} '
        '(the paper\'s Tables 1-3)', ''
    ]
    if not classes:
        return out + ['No per-class IoU recorded for this step.', '']
    paper = final_paper_result(summary)
    if len(classes) > MAX_CLASS_COLUMNS:
        rows = [[c.name, str(c.class_id),
                 str(c.learnt_at),
                 fmt(c.iou)] for c in classes]
        out += [md_table(['class', 'id', 'learnt at step', 'IoU'], rows), '']
        rows = [[
            'ours',
            fmt(m.get('mIoU_old')),
            fmt(m.get('mIoU_new')),
            fmt(m.get('mIoU')),
            fmt(m.get('mPA')),
            fmt(m.get('mCA'))
        ]]
        return out + [
            md_table(['', 'old', 'new', 'all', 'mPA', 'mCA'], rows), ''
        ]
    old = [c for c in classes if c.learnt_at == 0]
    new = [c for c in classes if c.learnt_at != 0]
    header = (['', *[c.name for c in old], 'old', *[c.name for c in new]] +
              (['new'] if new else []) + ['all', 'mPA', 'mCA'])

    def row(label, ious, res, mpa, mca):
        cells = [label, *[ious(c) for c in old], fmt(res.old)]
        cells += [ious(c) for c in new] + ([fmt(res.new)] if new else [])
        return cells + [fmt(res.all), mpa, mca]

    ours = OldNewAll(
        num(m.get('mIoU_old')), num(m.get('mIoU_new')), num(m.get('mIoU')))
    rows = [
        row('ours', lambda c: fmt(c.iou), ours, fmt(m.get('mPA')),
            fmt(m.get('mCA')))
    ]
    if paper is not None:
        rows.append(row(PAPER_LABEL, lambda c: '', paper, '', ''))
    out += [md_table(header, rows), '']
    if any(c.learnt_at is None for c in classes):
        out += [
            'The IoU names do not match `seen_classes`: the step of each '
            'class is unknown, all are listed as new.', ''
        ]
    return out


def _steps_section(summary: dict) -> List[str]:
    steps = summary['steps']
    paper = paper_step_miou(
        summary.get('dataset'), summary.get('task'), summary.get('method'))
    header = ['model', 'mIoU', 'mPA', 'mCA']
    if paper is not None:
        header.append(f'{PAPER_LABEL} mIoU')
    rows = []
    for e in steps:
        m = e['metrics']
        r = [
            step_label(e),
            fmt(m.get('mIoU')),
            fmt(m.get('mPA')),
            fmt(m.get('mCA'))
        ]
        if paper is not None:
            k = e['step']
            r.append(fmt(paper[k]) if k < len(paper) else '')
        rows.append(r)
    out = [
        '## mIoU, mPA and mCA after each step (the paper\'s Table 4)', '',
        md_table(header, rows), ''
    ]

    header = [
        'model', 'old (S_0)', 'old w/o bg', 'new', 'this step (U_k)', 'all',
        'hIoU'
    ]
    rows = []
    for e in steps:
        m = e['metrics']
        rows.append([step_label(e)] + [
            fmt(m.get(k)) for k in ('mIoU_old', 'mIoU_old_nobg', 'mIoU_new',
                                    'mIoU_step', 'mIoU', 'hIoU')
        ])
    last = step_label(steps[-1])
    paper_last = final_paper_result(summary)
    if paper_last is not None:
        rows.append([
            f'{PAPER_LABEL}, {last}',
            fmt(paper_last.old), '',
            fmt(paper_last.new), '',
            fmt(paper_last.all),
            fmt(harmonic(paper_last.old, paper_last.new))
        ])
    mib = _mib_row(summary)
    if mib is not None:
        rows.append([
            f'{MIB_LABEL}, {last}', '',
            fmt(mib.old),
            fmt(mib.new), '',
            fmt(mib.all), ''
        ])
    out += [
        '## old / new / all mIoU after each step', '',
        md_table(header, rows), ''
    ]
    return out


def _joint_section(summary: dict) -> List[str]:
    """A joint VOC model scored with the paper's old/new splits."""
    entry = summary['steps'][-1]
    if summary.get('dataset') != 'voc' or len(task_steps(summary)) != 1 or \
            len(entry.get('seen_classes') or []) != 21:
        return []
    rows = []
    for name, old_ids in JOINT_SPLITS:
        ours = resplit(summary, entry, old_ids)
        if ours is None:
            continue
        paper = paper_result('voc', name.split(' ')[0], 'joint')
        for label, res in (('ours', ours), (PAPER_LABEL, paper)):
            rows.append([
                name, label,
                fmt(res.old),
                fmt(res.new),
                fmt(res.all),
                fmt(harmonic(res.old, res.new))
            ])
    if not rows:
        return []
    return [
        '## The joint model split as the paper\'s tasks (its M0(0-20) rows)',
        '',
        md_table(['split', 'source', 'old', 'new', 'all', 'hIoU'],
                 rows,
                 numeric_from=2), ''
    ]


def _notes(summary: dict) -> List[str]:
    out = [
        '## Notes', '',
        '- mIoU in %. "old" = the step-0 classes S_0 with the background '
        '(the paper\'s 0-19 / 0-15), "old w/o bg" the same without it '
        '(MiB\'s 1-19 / 1-15), "new" = every class added since, "this '
        'step" = U_k, hIoU = harmonic mean of old and new; "–" = '
        'undefined (no new class yet, or a class absent from labels and '
        'predictions).'
    ]
    if summary.get('dataset') == 'voc':
        out.append(
            f'- "{PAPER_LABEL}": Michieli & Zanuttigh 2019, Pascal VOC 2012 '
            'val, DeepLab-v2 with an MSCOCO-pretrained ResNet-101; its hIoU '
            'is computed here from its old and new. "ours" comes from the '
            'config above: with another backbone or data compare trends '
            '(the ordering of methods), not absolute values.')
    if _mib_row(summary) is not None:
        out.append(f'- "{MIB_LABEL}": Cermelli et al. 2020; its old leaves '
                   'the background out (compare with "old w/o bg").')
    return out + ['']


def write_report(work_dir: str, summary: dict) -> None:
    """Write ``report.md``, ``metrics.csv``, ``miou_per_step.png`` and
    ``iou_per_class.png`` into ``work_dir``.

    Args:
        work_dir (str): The experiment's work dir.
        summary (dict): The content of ``summary.json`` (see
            :mod:`.summary`); values may be None.
    """
    check_summary(summary)
    os.makedirs(work_dir, exist_ok=True)
    paper = paper_step_miou(
        summary.get('dataset'), summary.get('task'), summary.get('method'))
    plot_miou_per_step(summary, osp.join(work_dir, 'miou_per_step.png'), paper)
    plot_iou_per_class(summary, osp.join(work_dir, 'iou_per_class.png'))
    lines = (
        _header(summary) + _per_class_section(summary) +
        _steps_section(summary) + _joint_section(summary) + [
            '## Plots', '', '![mIoU after each step](miou_per_step.png)', '',
            '![Per-class IoU after the last step](iou_per_class.png)', ''
        ] + _notes(summary))
    with open(osp.join(work_dir, 'report.md'), 'w') as f:
        f.write('\n'.join(lines))
    _write_metrics_csv(osp.join(work_dir, 'metrics.csv'), summary)


def _write_metrics_csv(path: str, summary: dict) -> None:
    """One row per step: the step metrics, then ``IoU.<class>`` of every
    class seen in any step (empty before the class is learnt)."""
    names: List[str] = []
    for e in summary['steps']:
        for name in e['metrics'].get('IoU') or {}:
            if name not in names:
                names.append(name)
    header = (['step', 'model', 'new_classes', 'seen_classes'] +
              list(CSV_METRICS) + [f'IoU.{n}' for n in names])
    rows = []
    for e in summary['steps']:
        m = e['metrics']
        ious = m.get('IoU') or {}
        rows.append([
            e['step'],
            step_label(e),
            join_ids(e.get('new_classes')),
            join_ids(e.get('seen_classes'))
        ] + [num(m.get(k))
             for k in CSV_METRICS] + [num(ious.get(n)) for n in names])
    write_csv(path, header, rows)
