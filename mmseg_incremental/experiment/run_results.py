"""Read-only views of a ``summary.json`` dict for reports and comparisons.

The summary (see :mod:`.summary`) lists, per step k, the original class ids
of U_k (``new_classes``) and of S_k (``seen_classes``, in output order) and
the metrics; ``metrics['IoU']`` maps class name -> IoU in output order, so
its i-th entry is the class ``seen_classes[i]``. "old" is S_0 (background
included), "new" every class added since (S_k minus S_0).
"""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence

from .paper_results import OldNewAll


class ClassIoU(NamedTuple):
    """The IoU of one class after a step.

    ``learnt_at`` is the step that learnt the class (0: old), None when the
    summary cannot tell (IoU names and ``seen_classes`` disagree).
    """

    name: str
    class_id: Optional[int]
    learnt_at: Optional[int]
    iou: Optional[float]


def num(value) -> Optional[float]:
    """``value`` as a float; None for None / NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def nanmean(values: Sequence[Optional[float]]) -> Optional[float]:
    """Mean of the defined values, None if there are none."""
    values = [v for v in map(num, values) if v is not None]
    return sum(values) / len(values) if values else None


def harmonic(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """hIoU = 2ab / (a + b); None if either is undefined."""
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def check_summary(summary: dict, where: str = 'summary') -> None:
    """Raise a clear error unless ``summary`` has the fields reports use."""
    if not isinstance(summary, dict) or not isinstance(
            summary.get('steps'), list) or not summary['steps']:
        raise ValueError(
            f'{where} must be a dict with a non-empty "steps" list (the '
            'format of summary.json written by mmseg_incremental.experiment.'
            'summary.write_summary); rerun the experiment or fix the file.')
    for i, entry in enumerate(summary['steps']):
        if not isinstance(entry, dict) or 'step' not in entry or \
                not isinstance(entry.get('metrics'), dict):
            raise ValueError(
                f'{where}: steps[{i}] needs "step" and a "metrics" dict; got '
                f'{entry!r}.')


def step_label(entry: dict) -> str:
    """The paper's model name of a step: ``M0(0-15)``, ``M1(16)``,
    ``M1(16-20)``; non-contiguous ids are listed (``M1(3,7)``)."""
    ids = list(entry.get('new_classes') or [])
    if not ids:
        body = '?'
    elif len(ids) == 1:
        body = str(ids[0])
    elif ids == list(range(ids[0], ids[0] + len(ids))):
        body = f'{ids[0]}-{ids[-1]}'
    else:
        body = ','.join(map(str, ids))
    return f'M{entry["step"]}({body})'


def task_steps(summary: dict) -> List[List[int]]:
    """The task's class ids per step; from ``task_steps`` if present, else
    from the ``new_classes`` of the steps the summary holds."""
    if summary.get('task_steps'):
        return [list(s) for s in summary['task_steps']]
    return [list(e.get('new_classes') or []) for e in summary['steps']]


def old_class_ids(summary: dict) -> List[int]:
    """S_0: the original ids learnt at step 0."""
    return task_steps(summary)[0]


def is_final(summary: dict) -> bool:
    """Whether the last step in the summary is the task's last step."""
    return summary['steps'][-1]['step'] == len(task_steps(summary)) - 1


def class_ious(summary: dict, entry: dict) -> List[ClassIoU]:
    """Per-class IoU of one step, in output order, with the step each
    class was learnt at."""
    ious = entry['metrics'].get('IoU') or {}
    seen = list(entry.get('seen_classes') or [])
    learnt: Dict[int, int] = {
        c: k
        for k, ids in enumerate(task_steps(summary))
        for c in ids
    }
    aligned = len(seen) == len(ious)
    out = []
    for i, (name, iou) in enumerate(ious.items()):
        cid = seen[i] if aligned else None
        out.append(ClassIoU(name, cid, learnt.get(cid), num(iou)))
    return out


def resplit(summary: dict, entry: dict,
            old_ids: Sequence[int]) -> Optional[OldNewAll]:
    """old/new/all mIoU of ``entry`` with ``old_ids`` as S_0 (e.g. a joint
    model scored as the paper's 19-1 split); None without per-class IoU."""
    classes = class_ious(summary, entry)
    if not classes or any(c.class_id is None for c in classes):
        return None
    old_ids = set(old_ids)
    old = [c.iou for c in classes if c.class_id in old_ids]
    new = [c.iou for c in classes if c.class_id not in old_ids]
    return OldNewAll(
        nanmean(old), nanmean(new), nanmean([c.iou for c in classes]))
