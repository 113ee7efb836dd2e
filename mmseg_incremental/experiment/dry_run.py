"""``--dry-run``: the plan of an experiment, step by step, before hours of
training. Nothing is trained and nothing is written to the work dir (the
datasets are built to count their images, which fills the class-presence
cache as a real run would)."""
import os.path as osp
from typing import List

from mmengine.config import Config
from mmengine.dist import get_world_size

from ..planning import (build_step_config, experiment_task, init_message,
                        step_iters, total_batch)
from .check_splits import step_dataset


def _lr_range(step_cfg: Config) -> str:
    """``lr a -> b`` at the step's first and last iteration (poly
    schedulers computed; others named)."""
    lr = step_cfg.optim_wrapper.optimizer.lr
    iters = step_cfg.train_cfg.max_iters
    end = lr
    names = []
    for sched in step_cfg.get('param_scheduler') or []:
        names.append(sched.type)
        if sched.type == 'PolyLR' and sched.get('end', 0) >= iters:
            span = sched.end - sched.get('begin', 0)
            done = iters - sched.get('begin', 0)
            eta_min = sched.get('eta_min', 0.0)
            end = (end - eta_min) * (1 - done / span)**sched.get('power',
                                                                 1.0) + eta_min
    return f'lr {lr:.3g} -> {end:.3g} ({", ".join(names) or "constant"})'


def describe_plan(cfg: Config, work_dir: str) -> str:
    """One block of lines per step: classes, images, schedule, teacher."""
    task = experiment_task(cfg)
    world = get_world_size()
    lines: List[str] = [
        f'{task.dataset} {task.name}: {task.num_steps} steps, method '
        f'{cfg.get("method", "?")}, setting '
        f'{cfg.get("setting", "sequential")}, evaluation '
        f'{cfg.get("eval_protocol", "seen_only")}, work dir {work_dir}'
    ]
    last = cfg.get('max_step', task.num_steps - 1)
    for step in range(last + 1):
        teacher = step and osp.join(
            work_dir, f'step_{step - 1}',
            f'iter_{step_iters(cfg, task, step - 1)}.pth')
        step_cfg = build_step_config(cfg, step,
                                     osp.join(work_dir, f'step_{step}'),
                                     teacher if step else None)
        train = step_dataset(step_cfg.train_dataloader)
        val = step_dataset(step_cfg.val_dataloader)
        new = [
            train.metainfo['classes'][i]
            for i in task.step_output_indices(step)[step]
        ]
        batch = step_cfg.train_dataloader.batch_size
        lines += [
            f'step {step}: new {", ".join(new)} ({len(new)}); seen '
            f'{len(train.metainfo["classes"])} classes',
            f'  images: {len(train)} train, {len(val)} val',
            f'  {step_cfg.train_cfg.max_iters} iterations, '
            f'{_lr_range(step_cfg)}, batch {batch} per process x '
            f'{world} = {total_batch(step_cfg, world)}',
            '  ' + (f'teacher {teacher} (M_{step - 1})'
                    if step else init_message(step_cfg)[0]),
        ]
    return '\n'.join(lines)
