"""Each step's schedule: the user's schedule, stretched to the step.

The paper trains step 0 for |S_0| * 1000 iterations at lr 1e-4 and step k
for |U_k| * 1000 at 5e-5, both poly-decayed to 1e-6 (docs/design.md §3). The
experiment config says this once, in ``iters_per_class``, ``lr_step0``,
``lr_incremental`` and ``lr_min``; its ``param_scheduler``, ``train_cfg``
and optimizer give the *shape*. :func:`patch_schedule` keeps that shape
and patches only the lengths and the lr:

- ``train_cfg.max_iters`` becomes the step's iterations;
- a scheduler that runs to the end of the config's training (``end``
  missing or >= its ``train_cfg.max_iters``) ends at the step's end
  (``T_max`` follows), and its ``eta_min`` becomes ``lr_min``; with a
  ``horizon`` longer than the step it ends there instead, so only the first
  part of the decay runs (the authors' L'_D and EF scripts decay over
  20,000 iterations but run 1,000: the lr stays near 5e-5);
- a scheduler that ends earlier (a warmup) is kept as written, cut at the
  step's end if the step is shorter;
- the optimizer's ``lr`` becomes the step's.
"""
from typing import Optional

from mmengine.config import Config


def _as_list(schedulers) -> list:
    if schedulers is None:
        return []
    return list(schedulers) if isinstance(schedulers, (list, tuple)) \
        else [schedulers]


def patch_schedule(step_cfg: Config,
                   iters: int,
                   lr: float,
                   lr_min: float,
                   horizon: Optional[int] = None) -> None:
    """Stretch ``step_cfg``'s schedule to ``iters`` at ``lr`` -> ``lr_min``.

    Args:
        step_cfg (Config): The step's config (patched in place).
        iters (int): The step's iterations.
        lr (float): The step's base lr.
        lr_min (float): The lr at the end of the decay.
        horizon (int, optional): Where the decay ends (>= ``iters``);
            defaults to ``iters``.

    Raises:
        ValueError: For epoch-based schedulers or loops (the experiment
            counts iterations).
    """
    train_cfg = step_cfg.get('train_cfg') or {}
    if train_cfg.get('by_epoch') or 'max_epochs' in train_cfg:
        raise ValueError(
            'The experiment schedules iterations (|S_0| or |U_k| times '
            'iters_per_class); use train_cfg=dict(type=\'IterBasedTrainLoop'
            "', max_iters=...) instead of an epoch-based loop.")
    full = int(train_cfg.get('max_iters', iters))
    horizon = iters if horizon is None else int(horizon)
    if horizon < iters:
        raise ValueError(f'The lr decay horizon ({horizon} iterations) is '
                         f'shorter than the step ({iters}); use a '
                         'lr_decay_horizon >= 1.')
    schedulers = _as_list(step_cfg.get('param_scheduler'))
    for sched in schedulers:
        if sched.get('by_epoch', True):
            raise ValueError(
                f'param_scheduler {sched.get("type")} has by_epoch=True (the '
                'default); set by_epoch=False: the experiment counts '
                'iterations.')
        end = sched.get('end')
        if end is None or end >= full:
            sched['end'] = horizon
            if 'T_max' in sched:
                sched['T_max'] = horizon - int(sched.get('begin', 0))
            if 'eta_min' in sched:
                sched['eta_min'] = lr_min
        elif end > iters:
            sched['end'] = iters
        if int(sched.get('begin', 0)) >= sched['end']:
            raise ValueError(
                f'param_scheduler {sched.get("type")} begins at iteration '
                f'{sched.get("begin")}, after this step ends ({iters} '
                'iterations); shorten it or raise iters_per_class.')
    step_cfg.param_scheduler = schedulers
    # No validation inside the loop: mmengine's IterBasedTrainLoop would
    # validate at the last iteration, and the experiment validates once
    # after training (Runner.val()).
    step_cfg.train_cfg = dict(
        train_cfg,
        type=train_cfg.get('type', 'IterBasedTrainLoop'),
        max_iters=iters,
        val_begin=iters + 1,
        val_interval=iters + 1)
    step_cfg.optim_wrapper.optimizer['lr'] = lr
