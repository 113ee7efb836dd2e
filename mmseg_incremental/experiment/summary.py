"""``D/summary.json``: the per-step metrics of an experiment (DESIGN §5).

.. code:: text

    {"task": "15-1", "dataset": "voc", "setting": "sequential",
     "method": "L'_D", "config": "configs/il/voc_15-1_ld.py",
     "steps": [{"step": 0, "new_classes": [0, ..., 15],
                "seen_classes": [0, ..., 15],
                "metrics": {"mIoU": 71.2, "mPA": ..., "mCA": ...,
                            "mIoU_old": ..., "mIoU_new": null,
                            "mIoU_step": ..., "hIoU": null,
                            "IoU": {"background": 90.1, ...}}}, ...]}

All values are percentages; ``null`` where a quantity is undefined (no new
classes at step 0).
"""
import json
import os
import os.path as osp
from typing import Dict, List

from mmengine.config import Config

from ..tasks import IncrementalTask
from .report import write_report
from .run_results import num

SUMMARY_METRICS = ('mIoU', 'mPA', 'mCA', 'mIoU_old', 'mIoU_new',
                   'mIoU_old_nobg', 'mIoU_step', 'hIoU')


def method_name(cfg: Config) -> str:
    """The paper's name of the method of ``cfg`` (``method_name`` in the
    config wins): FT, L'_D, EF, EF+L'_D, L''_D, L'_D+L''_D, joint."""
    if cfg.get('method_name'):
        return cfg['method_name']
    if str(cfg.get('task')) == 'joint':
        return 'joint'
    inc = cfg.get('incremental', {}) or {}
    parts = []
    if inc.get('freeze_encoder'):
        parts.append('EF')
    if inc.get('distill_output'):
        parts.append("L'_D")
    if inc.get('distill_feature'):
        parts.append("L''_D")
    return '+'.join(parts) or 'FT'


def dump_json(path: str, obj) -> None:
    """Write ``obj`` as JSON atomically (a reader never sees half a file)."""
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f, indent=2, default=repr)
    os.replace(path + '.tmp', path)


def metrics_to_summary(task: IncrementalTask, step: int,
                       metrics: Dict[str, float]) -> dict:
    """One ``steps[i]`` entry from the flat metric dict of the evaluator."""
    out = {k: num(metrics.get(k)) for k in SUMMARY_METRICS}
    out['IoU'] = {
        k[len('IoU.'):]: num(v)
        for k, v in metrics.items() if k.startswith('IoU.')
    }
    return dict(
        step=step,
        new_classes=list(task.new_classes(step)),
        seen_classes=list(task.seen_classes(step)),
        metrics=out)


def write_summary(work_dir: str, cfg: Config, task: IncrementalTask,
                  steps: List[dict]) -> dict:
    """Write ``summary.json`` and the report files; return the summary."""
    summary = dict(
        task=task.name,
        dataset=task.dataset,
        task_steps=[list(s) for s in task.steps],
        setting=cfg.get('setting', 'sequential'),
        eval_protocol=cfg.get('eval_protocol', 'seen_only'),
        method=method_name(cfg),
        config=cfg.filename,
        steps=steps)
    os.makedirs(work_dir, exist_ok=True)
    dump_json(osp.join(work_dir, 'summary.json'), summary)
    write_report(work_dir, summary)
    return summary
