"""Evaluate finished steps again under another protocol, without training.

Protocols disagree across papers (ILT keeps only images of seen classes,
MiB ignores unseen pixels, PLOP counts them as background; docs/design.md
§1), so a finished experiment can be scored under each: every chosen step's
``deploy_config.py`` (M_k alone) is evaluated on the step's validation
split under ``eval_protocol``, from the step's own checkpoint. The result
goes to ``D/eval_<protocol>/summary.json`` (same schema, its
``eval_protocol`` saying which), beside the original.

The evaluated view can change too: ``eval_crop=512`` scores MiB / PLOP's
centre crop (:class:`~mmseg_incremental.datasets.transforms.
ResizeCenterCrop`), ``eval_crop=None`` whole images; the folder is then
``D/eval_<protocol>_crop<N>`` or ``D/eval_<protocol>_whole``.
"""
import copy
import os.path as osp
from typing import Optional, Sequence, Union

from mmengine.config import Config
from mmengine.runner import Runner

from ..datasets import EVAL_PROTOCOLS
from ..datasets.transforms import insert_eval_crop
from ..planning import deploy_config, iter_incremental_datasets
from ..tasks import get_task
from ..utils import load_config
from ..utils.atomic_io import read_json
from .summary import dump_json, metrics_to_summary
from .visualizer import unique_visualizer


def _step_config(step_dir: str) -> Config:
    path = osp.join(step_dir, 'deploy_config.py')
    if osp.isfile(path):
        return load_config(path)
    return deploy_config(load_config(osp.join(step_dir, 'step_config.py')))


#: ``eval_crop`` left as the experiment evaluated.
KEEP = 'keep'


def _without_eval_crop(pipeline: list) -> list:
    return [dict(s) for s in pipeline if s.get('type') != 'ResizeCenterCrop']


def reevaluation_dir(work_dir: str,
                     eval_protocol: str,
                     eval_crop: Union[int, None, str] = KEEP) -> str:
    """Where :func:`reevaluate` writes: ``D/eval_<protocol>`` and, with
    another view, ``_crop<N>`` or ``_whole``."""
    suffix = '' if eval_crop == KEEP else (
        '_whole' if eval_crop is None else f'_crop{eval_crop}')
    return osp.join(work_dir, f'eval_{eval_protocol}{suffix}')


def reevaluate(work_dir: str,
               eval_protocol: str,
               steps: Optional[Sequence[int]] = None,
               eval_crop: Union[int, None, str] = KEEP) -> dict:
    """Evaluate finished steps of ``work_dir`` under ``eval_protocol``.

    Args:
        work_dir (str): A finished (or partly finished) experiment ``D``.
        eval_protocol (str): ``seen_only``, ``mask_unseen`` or
            ``unseen_as_background``.
        steps (Sequence[int], optional): The steps; all finished ones by
            default.
        eval_crop (int | None): The centre crop to evaluate (MiB / PLOP),
            None for whole images; by default as the experiment did.

    Returns:
        dict: The new summary (also written to ``D/eval_<protocol>/``).
    """
    if eval_protocol not in EVAL_PROTOCOLS:
        raise ValueError(f'eval_protocol={eval_protocol!r} is unknown; use '
                         f'one of {", ".join(EVAL_PROTOCOLS)}.')
    original = read_json(osp.join(work_dir, 'summary.json'), 'summary')
    done = [s['step'] for s in original['steps']]
    steps = done if steps is None else list(steps)
    missing = sorted(set(steps) - set(done))
    if missing:
        raise ValueError(f'Steps {missing} of {work_dir} are not finished; '
                         f'finished: {done}.')
    task = get_task(original['dataset'], dict(steps=original['task_steps']))
    if eval_crop != KEEP and eval_crop is not None and (
            isinstance(eval_crop, bool) or not isinstance(eval_crop, int)
            or eval_crop < 1):
        raise ValueError(f'eval_crop={eval_crop!r}: use an int >= 1 (MiB '
                         'and PLOP: 512) or None (whole images).')
    crop = original.get('eval_crop') if eval_crop == KEEP else eval_crop
    out_dir = reevaluation_dir(work_dir, eval_protocol, eval_crop)
    entries = []
    for step in steps:
        step_dir = osp.join(work_dir, f'step_{step}')
        checkpoint = read_json(
            osp.join(step_dir, 'step_done.json'),
            f'step {step} result')['checkpoint']
        cfg = _step_config(step_dir)
        for split in ('val', 'test'):
            for ds in iter_incremental_datasets(
                    cfg.get(f'{split}_dataloader', {})):
                ds['eval_protocol'] = eval_protocol
                if eval_crop != KEEP:
                    pipeline = _without_eval_crop(ds.get('pipeline') or [])
                    ds['pipeline'] = pipeline if eval_crop is None else \
                        insert_eval_crop(pipeline, eval_crop)
        cfg.work_dir = osp.join(out_dir, f'step_{step}')
        cfg.load_from = checkpoint
        unique_visualizer(cfg)
        metrics = Runner.from_cfg(cfg).val()
        entries.append(metrics_to_summary(task, step, metrics))
    summary = copy.deepcopy(original)
    summary.update(
        eval_protocol=eval_protocol,
        eval_crop=crop,
        steps=entries,
        reevaluated_from=osp.abspath(work_dir))
    dump_json(osp.join(out_dir, 'summary.json'), summary)
    return summary
