"""``D/summary.json``: an experiment's per-step metrics (docs/design.md §5).

.. code:: text

    {"task": "15-1", "dataset": "voc", "setting": "sequential",
     "method": "L'_D", "config": "configs/il/voc_15-1_ld.py",
     "incremental": {"distill_terms": {"output": {
                         "type": "OutputDistillTerm", ...}},
                     "freeze_encoder": false, ...},
     "steps": [{"step": 0, "new_classes": [0, ..., 15],
                "seen_classes": [0, ..., 15],
                "metrics": {"mIoU": 71.2, "mPA": ..., "mCA": ...,
                            "mIoU_old": ..., "mIoU_new": null,
                            "mIoU_step": ..., "hIoU": null,
                            "IoU": {"background": 90.1, ...}}}, ...]}

All values are percentages; ``null`` where a quantity is undefined (no new
classes at step 0). ``incremental`` is the config's ``incremental`` dict
(``{}`` when absent): reports compare it with the configs the published
numbers were measured with (:mod:`mmseg_incremental.reporting`).
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config, ConfigDict

from ..reporting.recipe import run_recipe
from ..tasks import IncrementalTask
from ..utils.atomic_io import atomic_path

SUMMARY_METRICS = ('mIoU', 'mPA', 'mCA', 'mIoU_old', 'mIoU_new',
                   'mIoU_old_nobg', 'mIoU_step', 'hIoU')


def num(value) -> Optional[float]:
    """``value`` as a float; None for None / NaN (JSON ``null``)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def method_name(cfg: Config) -> str:
    """The method's name, as its config fragment declares it (``method``
    in ``configs/_base_/methods/*.py``: FT, L'_D, EF+L'_D, ...); a config
    without one is named after its file."""
    if cfg.get('method'):
        return str(cfg['method'])
    return osp.splitext(osp.basename(cfg.filename or 'custom'))[0]


def dump_json(path: str, obj) -> None:
    """Write ``obj`` as JSON atomically: a reader never sees half a file,
    and a failed write (a full disk) leaves the previous file intact."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=2, default=repr)


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


def write_summary(work_dir: str,
                  cfg: Config,
                  task: IncrementalTask,
                  steps: List[dict],
                  provenance: Optional[dict] = None) -> dict:
    """Write ``summary.json``; return the summary. ``provenance``
    (:func:`.provenance.provenance`): what produced the numbers."""
    summary = dict(
        task=task.name,
        dataset=task.dataset,
        task_steps=[list(s) for s in task.steps],
        setting=cfg.get('setting', 'sequential'),
        eval_protocol=cfg.get('eval_protocol', 'seen_only'),
        # Which evaluation produced every number: whole images (None) or
        # MiB / PLOP's centre crop of this side.
        eval_crop=cfg.get('eval_crop'),
        method=method_name(cfg),
        config=cfg.filename,
        incremental=ConfigDict(cfg.get('incremental') or {}).to_dict(),
        steps=steps)
    if provenance is not None:
        summary['provenance'] = provenance
    # What a published row must share to be shown beside these numbers.
    summary['recipe'] = run_recipe(cfg)
    os.makedirs(work_dir, exist_ok=True)
    dump_json(osp.join(work_dir, 'summary.json'), summary)
    return summary
