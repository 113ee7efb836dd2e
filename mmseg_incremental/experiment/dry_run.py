"""``--dry-run``: the plan of an experiment, step by step, before hours of
training. Nothing is trained and nothing is written to the work dir (the
datasets are built to count their images, which fills the class-presence
cache as a real run would).

With a previous run's logs (``--time-from D'``, or the work dir itself when
it holds a run), each step also gets its training time: its iterations x
the seconds per iteration mmengine logged there (:mod:`.timing`); else
``time unknown (no previous run)``.

Every setting (:data:`~mmseg_incremental.planning.SETTINGS`) is listed
first with its value and where it came from: ``default``, ``config`` (the
config file or its bases) or ``--cfg-options``.
"""
import os.path as osp
from typing import Iterable, List, Optional

from mmengine.config import Config
from mmengine.dist import get_world_size

from ..planning import (check_settings, experiment_task, init_message,
                        setting_sources, total_batch)
from ..engine.hooks.experiment_progress_hook import format_duration
from .plan_check import planned_steps, step_datasets
from .timing import recorded_times, seconds_per_iter
from .visualizer import vis_backend_names, vis_backend_problem


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


def _time_line(iters: int, step: int, times: dict) -> str:
    per_iter = seconds_per_iter(times, step)
    if per_iter is None:
        return '  time unknown (no previous run)'
    source = '' if times.get(step) else ', from other steps'
    return (f'  time {format_duration(iters * per_iter)} ({iters} '
            f'iterations x {per_iter:.4g} s/iter{source})')


def settings_lines(cfg: Config,
                   cli_keys: Optional[Iterable[str]] = None) -> List[str]:
    """``  name = value (source)`` for every setting, in the order of
    :data:`~mmseg_incremental.planning.SETTINGS`.

    Args:
        cfg (Config): The experiment config (``--cfg-options`` merged).
        cli_keys (Iterable[str]): The ``--cfg-options`` keys.
    """
    cli_keys = tuple(cli_keys or ())
    values = check_settings(cfg, cli_keys)
    sources = setting_sources(cfg, cli_keys)
    return [
        f'  {name} = {value!r} ({sources[name]})'
        for name, value in values.items()
    ]


def describe_plan(cfg: Config,
                  work_dir: str,
                  time_from: Optional[str] = None,
                  cli_keys: Optional[Iterable[str]] = None) -> str:
    """The settings (value and source); then one block of lines per step:
    classes, images, schedule, teacher, training time; then the total time
    and where the metrics go.

    Args:
        cfg (Config): The experiment config.
        work_dir (str): The experiment's work dir (not written).
        time_from (str, optional): The work dir of a previous run (finished
            or not) whose logged seconds per iteration estimate the times.
            Defaults to None: ``work_dir``, if it holds a run.
        cli_keys (Iterable[str]): The ``--cfg-options`` keys merged into
            ``cfg`` (their settings' source is ``--cfg-options``).
            Defaults to None.
    """
    cli_keys = tuple(cli_keys or ())
    settings = settings_lines(cfg, cli_keys)  # checks them all first
    values = check_settings(cfg, cli_keys)
    task = experiment_task(cfg)
    world = get_world_size()
    times = recorded_times(time_from or work_dir)
    total = 0.0
    lines: List[str] = [
        f'{task.dataset} {task.name}: {task.num_steps} steps, method '
        f'{values["method"] or "?"}, setting {values["setting"]}, '
        f'evaluation {values["eval_protocol"]}, work dir {work_dir}',
        'settings (value, source):'
    ] + settings
    for step, teacher, step_cfg in planned_steps(cfg, work_dir):
        train, val = step_datasets(step, step_cfg)
        new = [
            train.metainfo['classes'][i]
            for i in task.step_output_indices(step)[step]
        ]
        batch = step_cfg.train_dataloader.batch_size
        lines += [
            f'step {step}: new {", ".join(new)} ({len(new)}); seen '
            f'{len(train.metainfo["classes"])} classes',
            f'  images: {len(train)} train'
            + (f' + up to {values["memory_size"]} of the exemplar memory'
               if step and values['memory_size'] else '')
            + f', {len(val)} val',
            f'  {step_cfg.train_cfg.max_iters} iterations, '
            f'{_lr_range(step_cfg)}, batch {batch} per process x '
            f'{world} = {total_batch(step_cfg, world)}',
            '  ' + (f'teacher {teacher} (M_{step - 1})'
                    if step else init_message(step_cfg)[0]),
            _time_line(step_cfg.train_cfg.max_iters, step, times),
        ]
        per_iter = seconds_per_iter(times, step)
        total += step_cfg.train_cfg.max_iters * (per_iter or 0.0)
    if times:
        lines.append(f'total time {format_duration(total)} of training '
                     f'(s/iter logged in {time_from or work_dir}; set-up '
                     'and validation not included)')
    else:
        where = f' in {time_from}' if time_from else ''
        lines.append(f'total time unknown (no previous run{where})')
    backends = ', '.join(vis_backend_names(cfg)) or 'none'
    lines.append(f'metrics of each step -> {osp.join(work_dir, "vis_data")} '
                 f'({backends}; x = step)')
    problem = vis_backend_problem(cfg)
    if problem:
        lines.append(f'ERROR: {problem}')
    return '\n'.join(lines)
