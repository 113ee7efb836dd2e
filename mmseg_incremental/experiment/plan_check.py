"""Every step of an experiment, planned and checked before step 0 trains.

``--dry-run`` and :class:`IncrementalExperiment` run the same code
(:func:`planned_steps`): each step's config is built (its segmentor's and
its terms' arguments checked, :func:`~..planning.build_step_config`), and
:func:`check_plan` builds each step's training and validation datasets
(which names bad data: label values that are no class, images whose mask
has another size). A config error therefore stops the run before anything
trains, with one line that names the step; an error after step 0 trained
is a bug.
"""
import copy
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

from ..planning import (build_step_config, experiment_task,
                        iter_incremental_datasets, list_steps, step_iters)
from ..utils.errors import RunStopped
from .check_splits import step_dataset

#: Errors of a config that planning names (anything else is a bug).
CONFIG_ERRORS = (TypeError, ValueError, KeyError, FileNotFoundError)


class PlanError(RunStopped, ValueError):
    """A step of the experiment cannot be planned as configured."""


def teacher_path(cfg: Config, work_dir: str, step: int) -> Optional[str]:
    """Where step ``step``'s teacher M_{k-1} will be (None at step 0)."""
    if step == 0:
        return None
    task = experiment_task(cfg)
    return osp.join(work_dir, f'step_{step - 1}',
                    f'iter_{step_iters(cfg, task, step - 1)}.pth')


def planned_steps(
        cfg: Config,
        work_dir: str) -> Iterator[Tuple[int, Optional[str], Config]]:
    """``(k, teacher, step config)`` of every step, in order.

    Raises:
        PlanError: A step's config cannot be built; names the step.
    """
    for step in list_steps(cfg):
        teacher = teacher_path(cfg, work_dir, step)
        try:
            step_cfg = build_step_config(cfg, step,
                                         osp.join(work_dir, f'step_{step}'),
                                         teacher)
        except CONFIG_ERRORS as error:
            raise PlanError(f'step {step}: {error}') from error
        yield step, teacher, step_cfg


def step_datasets(step: int, step_cfg: Config) -> Tuple[object, object]:
    """The step's training and validation datasets, built (bad data is an
    error naming the files).

    Raises:
        PlanError: A dataset cannot be built; names the step.
    """
    train = copy.deepcopy(step_cfg.train_dataloader)
    for ds in iter_incremental_datasets(train):
        # The exemplar memory is chosen when the step starts.
        if ds.get('memory_file') and not osp.isfile(ds['memory_file']):
            ds.pop('memory_file')
    try:
        return (step_dataset(train), step_dataset(step_cfg.val_dataloader))
    except CONFIG_ERRORS as error:
        raise PlanError(f'step {step}: {error}') from error


def check_plan(cfg: Config, work_dir: str) -> List[Config]:
    """Plan and check every step (configs and datasets); the step configs.

    Raises:
        PlanError: The first step that cannot run as configured.
    """
    configs = []
    for step, _, step_cfg in planned_steps(cfg, work_dir):
        step_datasets(step, step_cfg)
        configs.append(step_cfg)
    return configs
