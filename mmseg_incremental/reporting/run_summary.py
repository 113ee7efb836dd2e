"""The typed model of one experiment: ``D/summary.json`` parsed once.

.. code:: text

    summary.json --RunSummary.load()--> RunSummary
                                          ├─ task, dataset, method, setting,
                                          │  eval_protocol, config, incremental
                                          ├─ task_steps  (class ids per step)
                                          └─ steps: StepResult
                                               ├─ step, new_classes,
                                               │  seen_classes (output order)
                                               └─ metrics: Metrics (percent,
                                                  None where undefined)

"old" is S_0 (the background included), "new" every class added since
(S_k minus S_0), as in :mod:`mmseg_incremental.evaluation`. A malformed file
raises :class:`SummaryError` naming the file and the offending field.
"""
import json
import math
import os.path as osp
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from ..utils.errors import RunStopped

#: The step metrics of ``summary.json``, in the order of ``metrics.csv``.
METRIC_KEYS = ('mIoU', 'mPA', 'mCA', 'mIoU_old', 'mIoU_old_nobg', 'mIoU_new',
               'mIoU_step', 'hIoU')


class SummaryError(RunStopped, ValueError):
    """A ``summary.json`` (or summary dict) that reports cannot read."""


class OldNewAll(NamedTuple):
    """mIoU (%) over the old classes, the new classes and all classes;
    ``new`` is None where the model has no new classes (M0)."""

    old: Optional[float]
    new: Optional[float]
    all: Optional[float]


def nanmean(values) -> Optional[float]:
    """Mean of the values that are not None, None if there are none."""
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def harmonic(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """hIoU = 2ab / (a + b); None if either is undefined."""
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def model_label(step: int, new_classes) -> str:
    """The paper's name of a step's model: ``M0(0-15)``, ``M1(16)``,
    ``M1(16-20)``; non-contiguous ids are listed (``M1(3,7)``)."""
    ids = list(new_classes)
    if not ids:
        body = '?'
    elif len(ids) == 1:
        body = str(ids[0])
    elif ids == list(range(ids[0], ids[0] + len(ids))):
        body = f'{ids[0]}-{ids[-1]}'
    else:
        body = ','.join(map(str, ids))
    return f'M{step}({body})'


def _percent(value: Any, where: str) -> Optional[float]:
    """A metric value: a number, or None for null / NaN."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SummaryError(f'{where} must be a number or null, got {value!r}.')
    return None if math.isnan(value) else float(value)


def _ids(value: Any, where: str) -> Tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise SummaryError(f'{where} must be a list of class ids, got '
                           f'{value!r}.')
    return tuple(value)


@dataclass(frozen=True)
class Metrics:
    """The metrics of one step, in percent (None where undefined).

    ``IoU`` maps class name -> IoU in output order: its i-th entry is the
    class ``seen_classes[i]`` of the step.
    """

    mIoU: Optional[float] = None
    mPA: Optional[float] = None
    mCA: Optional[float] = None
    mIoU_old: Optional[float] = None
    mIoU_old_nobg: Optional[float] = None
    mIoU_new: Optional[float] = None
    mIoU_step: Optional[float] = None
    hIoU: Optional[float] = None
    IoU: Mapping[str, Optional[float]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping, where: str) -> 'Metrics':
        """Parse ``steps[i].metrics``; absent keys are None."""
        values = {
            k: _percent(data.get(k), f'{where}.{k}')
            for k in METRIC_KEYS
        }
        ious = data.get('IoU') or {}
        if not isinstance(ious, dict):
            raise SummaryError(f'{where}.IoU must map class names to IoU, '
                               f'got {ious!r}.')
        values['IoU'] = {
            str(name): _percent(v, f'{where}.IoU.{name}')
            for name, v in ious.items()
        }
        return cls(**values)

    def to_dict(self) -> Dict[str, Any]:
        """The ``metrics`` dict of ``summary.json``."""
        out = {k: getattr(self, k) for k in METRIC_KEYS}
        out['IoU'] = dict(self.IoU)
        return out


@dataclass(frozen=True)
class StepResult:
    """The state after step ``step``: its new classes U_k, the classes S_k
    in output order and the metrics of M_k."""

    step: int
    new_classes: Tuple[int, ...]
    seen_classes: Tuple[int, ...]
    metrics: Metrics

    @property
    def label(self) -> str:
        """``M<k>(<U_k>)``, see :func:`model_label`."""
        return model_label(self.step, self.new_classes)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> 'StepResult':
        """Parse one ``steps[i]`` entry."""
        if not isinstance(data, dict) or not isinstance(
                data.get('step'), int) or not isinstance(
                    data.get('metrics'), dict):
            raise SummaryError(f'{where} needs "step" and a "metrics" dict; '
                               f'got {data!r}.')
        return cls(
            step=data['step'],
            new_classes=_ids(
                data.get('new_classes', []), f'{where}.new_classes'),
            seen_classes=_ids(
                data.get('seen_classes', []), f'{where}.seen_classes'),
            metrics=Metrics.from_dict(data['metrics'], f'{where}.metrics'))


class ClassIoU(NamedTuple):
    """The IoU of one class after a step; ``learnt_at`` is the step that
    learnt it (0: old), None when the summary cannot tell (IoU names and
    ``seen_classes`` disagree)."""

    name: str
    class_id: Optional[int]
    learnt_at: Optional[int]
    iou: Optional[float]


@dataclass(frozen=True)
class RunSummary:
    """One experiment: what was run and the metrics after each step.

    ``incremental`` is the config's ``incremental`` dict (the distillation
    and freezing of steps k >= 1) or None in a summary written before it
    was recorded. ``work_dir`` is set by :meth:`load`.
    """

    task: str
    dataset: str
    method: str
    setting: str
    eval_protocol: str
    config: Optional[str]
    task_steps: Tuple[Tuple[int, ...], ...]
    steps: Tuple[StepResult, ...]
    incremental: Optional[Mapping[str, Any]] = None
    work_dir: Optional[str] = None
    #: What produced the numbers (code, versions, device, seed, data);
    #: None for a summary written before it was recorded.
    provenance: Optional[Mapping[str, Any]] = None
    #: The side of the evaluated centre crop (MiB / PLOP's evaluation), or
    #: None: whole images (and summaries written before it was recorded).
    eval_crop: Optional[int] = None
    #: The training recipe (network, output stride, crop, total batch,
    #: schedule, evaluation: :func:`.recipe.run_recipe`); None before it
    #: was recorded.
    recipe: Optional[Mapping[str, Any]] = None

    @property
    def evaluation(self) -> str:
        """Which evaluation produced the numbers, in words."""
        if self.eval_crop is None:
            return 'whole images'
        return (f'{self.eval_crop}x{self.eval_crop} centre crop (short side '
                f'resized to {self.eval_crop})')

    @classmethod
    def load(cls, work_dir: str) -> 'RunSummary':
        """Read ``<work_dir>/summary.json``."""
        path = osp.join(work_dir, 'summary.json')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path} does not exist: pass the work dir of an experiment '
                'run with tools/train_incremental.py (it writes summary.json '
                'after each step).')
        with open(path) as f:
            try:
                data = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise SummaryError(
                    f'{path} is damaged (not valid JSON: {e}); rerun the '
                    'experiment with --resume to rewrite it (finished steps '
                    'are kept).') from e
        return replace(cls.from_dict(data, where=path), work_dir=work_dir)

    @classmethod
    def from_dict(cls, data: Any, where: str = 'summary') -> 'RunSummary':
        """Parse the content of ``summary.json`` (see
        :func:`mmseg_incremental.experiment.summary.write_summary`)."""
        if not isinstance(data, dict) or not isinstance(
                data.get('steps'), list) or not data['steps']:
            raise SummaryError(
                f'{where} must be a dict with a non-empty "steps" list (the '
                'format of summary.json written by mmseg_incremental.'
                'experiment.summary.write_summary); rerun the experiment or '
                'fix the file.')
        steps = tuple(
            StepResult.from_dict(e, f'{where}: steps[{i}]')
            for i, e in enumerate(data['steps']))
        for key in ('task', 'dataset', 'method', 'setting', 'eval_protocol'):
            if key in data and not isinstance(data[key], str):
                raise SummaryError(f'{where}: "{key}" must be a string, got '
                                   f'{data[key]!r}.')
        if 'task' not in data:
            raise SummaryError(f'{where} has no "task".')
        incremental = data.get('incremental')
        if incremental is not None and not isinstance(incremental, dict):
            raise SummaryError(f'{where}: "incremental" must be a dict, got '
                               f'{incremental!r}.')
        if data.get('task_steps'):
            task_steps = tuple(
                _ids(s, f'{where}: task_steps[{i}]')
                for i, s in enumerate(data['task_steps']))
        else:
            task_steps = tuple(e.new_classes for e in steps)
        for i, e in enumerate(steps):
            if not 0 <= e.step < len(task_steps):
                raise SummaryError(
                    f'{where}: steps[{i}].step is {e.step}, outside the '
                    f"task's {len(task_steps)} steps.")
        return cls(
            task=data['task'],
            dataset=data.get('dataset', 'unknown'),
            method=data.get('method', 'unknown'),
            setting=data.get('setting', 'sequential'),
            eval_protocol=data.get('eval_protocol', 'seen_only'),
            config=data.get('config'),
            task_steps=task_steps,
            steps=steps,
            incremental=incremental,
            provenance=data.get('provenance') if isinstance(
                data.get('provenance'), dict) else None,
            eval_crop=data.get('eval_crop'),
            recipe=data.get('recipe') if isinstance(data.get('recipe'),
                                                    dict) else None)

    def to_dict(self) -> Dict[str, Any]:
        """The ``summary.json`` content (without ``work_dir``)."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self) if f.name not in ('steps', 'work_dir')
        }
        for key in ('provenance', 'eval_crop', 'recipe'):  # since 0.1
            if out[key] is None:
                del out[key]
        out['task_steps'] = [list(s) for s in self.task_steps]
        out['steps'] = [
            dict(
                step=s.step,
                new_classes=list(s.new_classes),
                seen_classes=list(s.seen_classes),
                metrics=s.metrics.to_dict()) for s in self.steps
        ]
        return out

    @property
    def last(self) -> StepResult:
        """The last step in the summary."""
        return self.steps[-1]

    @property
    def is_final(self) -> bool:
        """Whether the last step in the summary is the task's last step."""
        return self.last.step == len(self.task_steps) - 1

    @property
    def is_joint(self) -> bool:
        """A one-step task: every class learnt at once."""
        return len(self.task_steps) == 1

    @property
    def step_labels(self) -> List[str]:
        """The model label of every step of the task (run or not)."""
        return [model_label(k, ids) for k, ids in enumerate(self.task_steps)]

    def class_ious(self, result: StepResult) -> List[ClassIoU]:
        """Per-class IoU of one step, in output order, with the step each
        class was learnt at."""
        ious = result.metrics.IoU
        learnt = {c: k for k, ids in enumerate(self.task_steps) for c in ids}
        aligned = len(result.seen_classes) == len(ious)
        out = []
        for i, (name, iou) in enumerate(ious.items()):
            cid = result.seen_classes[i] if aligned else None
            out.append(ClassIoU(name, cid, learnt.get(cid), iou))
        return out

    def resplit(self, result: StepResult, old_ids) -> Optional[OldNewAll]:
        """old/new/all mIoU of ``result`` with ``old_ids`` as S_0 (e.g. a
        joint model scored as the paper's 19-1); None without per-class
        IoU."""
        classes = self.class_ious(result)
        if not classes or any(c.class_id is None for c in classes):
            return None
        old_ids = set(old_ids)
        return OldNewAll(
            nanmean(c.iou for c in classes if c.class_id in old_ids),
            nanmean(c.iou for c in classes if c.class_id not in old_ids),
            nanmean(c.iou for c in classes))
