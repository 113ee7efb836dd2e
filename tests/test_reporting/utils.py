"""Hand-made ``summary.json`` dicts with known numbers, and readers of the
Markdown / CSV that reports write."""
import csv
import json
import os.path as osp

from mmengine.config import Config

VOC = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
       'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
       'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
       'tvmonitor')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Method name -> its fragment in configs/_base_/methods/.
METHOD_FILES = {
    'FT': 'ft',
    "L'_D": 'ld',
    'EF': 'ef',
    "EF+L'_D": 'ef-ld',
    "L''_D": 'fd',
    "L'_D+L''_D": 'ld-fd',
    'ILT (MiB)': 'mib-ilt',
    'M0': 'ft',
    'joint': 'ft',
}


def incremental(method):
    """The ``incremental`` dict of a shipped method fragment, as
    ``write_summary`` stores it."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'methods',
                 f'{METHOD_FILES[method]}.py'))
    return cfg.incremental.to_dict()


def entry(step, new, seen, miou, iou=None, names=VOC, **metrics):
    """One steps[i] of summary.json; IoU of class c defaults to c + 50."""
    iou = iou or {}
    m = dict(
        mIoU=miou,
        mPA=90.0 + step,
        mCA=80.0 + step,
        mIoU_old=None,
        mIoU_new=None,
        mIoU_old_nobg=None,
        mIoU_step=None,
        hIoU=None)
    m.update(metrics)
    m['IoU'] = {names[c]: iou.get(c, c + 50.0) for c in seen}
    return dict(
        step=step, new_classes=list(new), seen_classes=list(seen), metrics=m)


def summary(task,
            task_steps,
            method,
            steps,
            dataset='voc',
            setting='sequential',
            eval_protocol='seen_only',
            inc=None):
    return dict(
        task=task,
        dataset=dataset,
        task_steps=task_steps,
        setting=setting,
        eval_protocol=eval_protocol,
        method=method,
        config=f'configs/il/{task}.py',
        incremental=incremental(method) if inc is None else inc,
        steps=steps)


def voc_19_1(method="L'_D", new_miou=30.0, iou20=30.0, **kwargs):
    return summary('19-1', [list(range(20)), [20]], method, [
        entry(
            0,
            range(20),
            range(20),
            60.0,
            mIoU_old=60.0,
            mIoU_old_nobg=59.0,
            mIoU_step=60.0),
        entry(
            1, [20],
            range(21),
            58.0,
            iou={20: iou20},
            mIoU_old=59.5,
            mIoU_new=new_miou,
            mIoU_old_nobg=58.5,
            mIoU_step=new_miou,
            hIoU=39.9)
    ], **kwargs)


def voc_15_1(method='FT', last_step=5, **kwargs):
    """15-1 up to ``last_step``: mIoU 70 - 10 k after step k."""
    steps = [entry(0, range(16), range(16), 70.0, mIoU_old=70.0)]
    for k in range(1, last_step + 1):
        steps.append(
            entry(
                k, [15 + k],
                range(16 + k),
                70.0 - 10 * k,
                mIoU_old=71.0 - 10 * k,
                mIoU_new=20.0 + k))
    return summary('15-1', [list(range(16))] + [[c] for c in range(16, 21)],
                   method, steps, **kwargs)


def voc_joint():
    # IoU of class c: c (0..19), tvmonitor 41; bottle (5) undefined.
    iou = {c: float(c) for c in range(20)}
    iou.update({5: None, 20: 41.0})
    return summary('joint', [list(range(21))], 'joint', [
        entry(
            0,
            range(21),
            range(21),
            12.0,
            iou=iou,
            mIoU_old=12.0,
            mIoU_old_nobg=12.5,
            mIoU_step=12.0)
    ])


def md_tables(text):
    """{section heading: [rows as {column: cell}]} of a Markdown file (the
    first table under each heading)."""
    tables, heading, lines = {}, None, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('#'):
            heading = line.lstrip('# ').strip()
        elif line.startswith('|') and not lines[i - 1].startswith('|'):
            header = [c.strip() for c in line.strip('|').split('|')]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith('|'):
                    break
                cells = [c.strip() for c in row.strip('|').split('|')]
                assert len(cells) == len(header), row
                rows.append(dict(zip(header, cells)))
            tables.setdefault(heading, rows)
    return tables


def table(tables, prefix):
    (rows, ) = [v for k, v in tables.items() if k.startswith(prefix)]
    return rows


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def write_run(root, name, s):
    d = root / name
    d.mkdir(parents=True)
    (d / 'summary.json').write_text(json.dumps(s))
    return str(d)
