"""Turn an incremental experiment config into the config of each step.

An experiment config is an ordinary mmseg config for step 0 (it trains M_0
with mmseg's stock ``tools/train.py``) plus top-level settings, e.g.

.. code:: python

    task = '15-1'                 # or dict(steps=[[0, ...], [...]])
    iters_per_class = 1000        # step 0: |S_0| * it, step k: |U_k| * it
    incremental = dict(           # the segmentor's arguments for k >= 1
        distill_terms=dict(output=dict(type='OutputDistillTerm')))
    method = "L'_D"               # the name reports print

:mod:`.settings` declares every setting once (type, default, allowed
values; ``docs/settings.md``) and checks them (:func:`check_settings`);
the mmseg-style ``data_root``, ``crop_size``, ``pretrained`` and
``total_batch_size`` are applied where they belong by :mod:`.scalars`.

:func:`build_step_config` derives step k from it: the datasets' ``task`` /
``step`` / ``setting`` / ``eval_protocol`` (and, with MiB's
``void_as_background``, ``VoidAsBackground`` in the training pipeline),
the classifier size |S_k|, the schedule (docs/design.md §3) and, for
k >= 1, the method's incremental segmentor whose teacher is M_{k-1}'s
checkpoint. Every step config is a
plain mmengine config, so it also runs under mmseg's ``tools/train.py``.
"""
import copy
import hashlib
import json
import os.path as osp
from typing import Iterator, List, Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.dist import get_world_size
from mmseg.registry import DATASETS

from ..datasets.transforms import insert_after_loading, insert_eval_crop
from ..engine.hooks.cuda_graph_hook import CUDA_GRAPH_DISTRIBUTED
from ..tasks import IncrementalTask, get_task
from .init_files import init_sources
from .step_model import add_hook, set_step_model
from .schedule import patch_schedule
from .scalars import (apply_amp, apply_crop_size, apply_data_root,
                      apply_pretrained, apply_teacher_cache, apply_total_batch,
                      apply_val_batch_size, total_batch)
from .settings import EXPERIMENT_KEYS, check_settings, setting_value


def _get(cfg: Config, key: str):
    """The config's value of setting ``key``, else its declared default."""
    return setting_value(cfg, key)


def iter_incremental_datasets(cfg: dict) -> Iterator[dict]:
    """Yield the incremental dataset dicts inside a dataloader/dataset cfg,
    looking through wrappers (``RepeatDataset``, ``ConcatDataset``...)."""
    if isinstance(cfg, dict):
        dtype = cfg.get('type')
        if isinstance(dtype, str) and \
                hasattr(DATASETS.get(dtype) or object, 'DATASET_NAME'):
            yield cfg
            return
        for key in ('dataset', 'datasets'):
            if key in cfg:
                yield from iter_incremental_datasets(cfg[key])
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            yield from iter_incremental_datasets(item)


def experiment_task(cfg: Config) -> IncrementalTask:
    """The task of an experiment config (dataset name from its dataset).

    The experiment calls this first: the settings are checked here
    (:func:`check_settings`), before anything is written.
    """
    check_settings(cfg)
    found = list(iter_incremental_datasets(cfg.get('train_dataloader', {})))
    if not found:
        raise ValueError(
            'train_dataloader.dataset is not an incremental dataset; use '
            'IncrementalVOCDataset or IncrementalADE20KDataset.')
    dataset_name = DATASETS.get(found[0]['type']).DATASET_NAME
    return get_task(dataset_name, _plain(cfg['task']))


def _plain(value):
    """ConfigDict/tuple -> builtin dict/list (for tasks and hashing)."""
    if isinstance(value, (ConfigDict, dict)):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def step_iters(cfg: Config, task: IncrementalTask, step: int) -> int:
    """``iters_per_step[k]`` when the config lists them; else |S_0| *
    iters_per_class at step 0 and |U_k| * iters_per_class_incremental after
    (``iters_per_class`` when that is None)."""
    listed = _get(cfg, 'iters_per_step')
    if listed is not None:
        if len(listed) != task.num_steps:
            raise ValueError(
                f'iters_per_step lists {len(listed)} steps, task '
                f'{task.name!r} has {task.num_steps}; give one iteration '
                'count per step.')
        return int(listed[step])
    per_class = _get(cfg, 'iters_per_class')
    if step > 0 and _get(cfg, 'iters_per_class_incremental') is not None:
        per_class = _get(cfg, 'iters_per_class_incremental')
    return int(per_class) * len(task.new_classes(step))


def build_step_config(cfg: Config,
                      step: int,
                      work_dir: str,
                      teacher_checkpoint: Optional[str] = None,
                      world_size: Optional[int] = None) -> Config:
    """The full mmengine config that trains step ``step``.

    Args:
        cfg (Config): The experiment config.
        step (int): The step k.
        work_dir (str): The step's work dir (``D/step_<k>``).
        teacher_checkpoint (str, optional): M_{k-1}'s checkpoint; required
            for k >= 1.
        world_size (int, optional): The number of processes that train;
            defaults to torch.distributed's (1 when not initialised).

    Returns:
        Config: The step's config, without the experiment-only keys. Its
        ``custom_hooks`` hold a ``ValCudnnBenchmarkHook`` (no cuDNN
        benchmarking of validation's many image shapes) unless the
        experiment config lists one already.
    """
    values = check_settings(cfg)
    task = experiment_task(cfg)
    task.new_classes(step)  # validates
    step_cfg = Config(copy.deepcopy(cfg.to_dict()), filename=cfg.filename)
    for key in EXPERIMENT_KEYS:
        step_cfg.pop(key, None)
    step_cfg.work_dir = work_dir
    step_cfg.experiment_name = f'step_{step}'
    if step > 0:
        # M_k starts from M_{k-1} (the teacher); a load_from would make
        # the Runner overwrite it after the student was filled.
        step_cfg.load_from = None
    _set_datasets(step_cfg, values, step)
    apply_crop_size(step_cfg)
    apply_pretrained(step_cfg, step)
    apply_total_batch(step_cfg,
                      get_world_size() if world_size is None else world_size)
    set_step_model(
        step_cfg,
        task,
        step,
        teacher_checkpoint,
        classifier=values['classifier'],
        incremental=_plain(values['incremental']),
        distill_resolution=values['distill_resolution'])
    apply_teacher_cache(
        step_cfg,
        list(iter_incremental_datasets(step_cfg.get('train_dataloader', {}))))
    apply_amp(step_cfg, values['amp'])
    # How the step runs, not what it learns: no part of any fingerprint.
    if values['channels_last']:
        add_hook(step_cfg, dict(type='ChannelsLastHook'))
    if values['cuda_graph']:
        if step_cfg.get('launcher', 'none') != 'none':
            raise ValueError(CUDA_GRAPH_DISTRIBUTED)
        add_hook(step_cfg, dict(type='CudaGraphHook'))
    # Whole-image validation of many shapes without cuDNN benchmarking
    # each (training keeps it); a user's own one is kept as given.
    add_hook(step_cfg, dict(type='ValCudnnBenchmarkHook'))
    apply_val_batch_size(step_cfg, values['val_batch_size'])
    # No host sync per training iteration (on a GPU): batches copied
    # non-blocking, each iteration's losses logged one iteration late.
    add_hook(step_cfg, dict(type='NonBlockingCopyHook'))
    default_hooks = step_cfg.get('default_hooks') or ConfigDict()
    default_hooks.setdefault('runtime_info',
                             dict(type='DeferredRuntimeInfoHook'))
    step_cfg.default_hooks = default_hooks
    iters = step_iters(cfg, task, step)
    apply_checkpoints_per_step(step_cfg, iters, values['checkpoints_per_step'])
    # A non-finite loss stops the step (one line, nothing kept as a
    # result); SIGTERM/SIGINT/SIGUSR1 save the current iteration and stop.
    add_hook(step_cfg,
             dict(type='DivergenceGuardHook',
                  skip_limit=nan_skip_limit(step_cfg, values['nan_policy'])))
    add_hook(step_cfg, dict(type='PreemptionHook'))
    horizon = 1.0 if step == 0 else float(values['lr_decay_horizon'])
    patch_schedule(
        step_cfg,
        iters=iters,
        lr=values['lr_step0'] if step == 0 else values['lr_incremental'],
        lr_min=values['lr_min'],
        horizon=round(horizon * iters))
    if step_cfg.get('launcher', 'none') != 'none' and \
            not torch.cuda.is_available():
        # CPU DDP (gloo): DistributedDataParallel takes no device_ids.
        step_cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None)
    return step_cfg


#: Non-finite losses in a row that ``nan_policy='skip'`` tolerates.
NAN_SKIP_LIMIT = 10


def nan_skip_limit(step_cfg: Config, policy: str) -> int:
    """The ``DivergenceGuardHook``'s ``skip_limit`` of ``nan_policy``:
    'skip' needs fp16 AMP's loss scaler (it is what skips the step)."""
    if policy != 'skip':
        return 0
    wrapper = step_cfg.get('optim_wrapper') or {}
    if wrapper.get('type') != 'AmpOptimWrapper' or \
            wrapper.get('dtype') != 'float16':
        raise ValueError(
            "nan_policy='skip' needs amp='fp16' on a GPU: the fp16 loss "
            'scaler is what skips the step of a non-finite loss (here '
            f"optim_wrapper {wrapper.get('type')!r}, dtype "
            f"{wrapper.get('dtype')!r}); use nan_policy='stop'.")
    return NAN_SKIP_LIMIT


def apply_checkpoints_per_step(step_cfg: Config, iters: int,
                               per_step: Optional[int]) -> None:
    """Save at least ``per_step`` checkpoints in a step of ``iters``
    iterations: the iteration-based checkpoint interval drops to
    ``ceil(iters / per_step)`` where it is longer (None: unchanged)."""
    hook = (step_cfg.get('default_hooks') or {}).get('checkpoint')
    if per_step is None or not hook or hook.get('by_epoch', True):
        return
    interval = max(1, -(-iters // per_step))
    if hook.get('interval', -1) <= 0 or hook['interval'] > interval:
        hook['interval'] = interval


def _set_datasets(step_cfg: Config, values: dict, step: int) -> None:
    """Task, step, setting, ``void_as_background`` and the exemplar
    memory's file (train) / protocol and ``eval_crop`` (val, test),
    data_root."""
    found = []
    for split in ('train', 'val', 'test'):
        for ds in iter_incremental_datasets(
                step_cfg.get(f'{split}_dataloader', {})):
            ds['task'] = _plain(values['task'])
            ds['step'] = step
            if split == 'train':
                ds['setting'] = values['setting']
                if values['void_as_background']:
                    insert_after_loading(ds.get('pipeline') or [])
                if values['memory_size'] and step > 0:
                    # Chosen by the experiment before the step trains.
                    ds['memory_file'] = osp.join(step_cfg.work_dir,
                                                 MEMORY_FILE)
            else:
                ds['eval_protocol'] = values['eval_protocol']
                if values['eval_crop'] is not None:
                    ds['pipeline'] = insert_eval_crop(
                        ds.get('pipeline') or [], values['eval_crop'])
            found.append((f'{split}_dataloader', ds))
    apply_data_root(step_cfg, found)


def fingerprint(value) -> str:
    """A stable hash of a JSON-able config fragment."""
    text = json.dumps(_plain(value), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def step0_fingerprint_source(cfg: Config,
                             data_key: Optional[str] = None) -> dict:
    """What decides M_0: model, step-0 training data and schedule, seed.

    ``data_key``: the step-0 training data's :func:`data_content_key`
    when the caller has it already (else it is computed: one build of the
    step-0 dataset).

    The step-0 images enter by content (:func:`data_content_key`), not by
    path. The task enters only through S_0 (step 0's split and labels depend
    on S_0 alone), so e.g. VOC 15-5 and 15-1 share M_0, as in the paper; and
    ``disjoint`` equals ``sequential`` at step 0 (there are no old classes).
    """
    task = experiment_task(cfg)
    step_cfg = build_step_config(cfg, 0, work_dir='')
    train = _plain(step_cfg.train_dataloader)
    for ds in iter_incremental_datasets(train):
        ds['task'] = dict(steps=[list(task.steps[0])])
        # With no old classes, disjoint step 0 is sequential step 0.
        if ds.get('setting', 'sequential') == 'disjoint':
            ds['setting'] = 'sequential'
    return dict(
        model=_plain(step_cfg.model),
        init=init_sources(step_cfg),
        world_size=get_world_size(),
        total_batch_size=total_batch(step_cfg, get_world_size()),
        train_dataloader=train,
        optim_wrapper=_plain(step_cfg.optim_wrapper),
        param_scheduler=_plain(step_cfg.param_scheduler),
        train_cfg=_plain(step_cfg.train_cfg),
        randomness=_plain(step_cfg.get('randomness', {})),
        dataset=task.dataset,
        data=data_key if data_key is not None else data_content_key(
            step_cfg.train_dataloader))


def data_content_key(loader: dict) -> Optional[str]:
    """The content key of a dataloader's incremental dataset (its images'
    sizes and masks' CRCs: ``data_fingerprint``), None for another kind.
    Part of the step-0 store's key: a dataset regenerated at the same path
    is not taken for the old one; a copy elsewhere keeps its key."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    for ds_cfg in iter_incremental_datasets(loader):
        dataset = DATASETS.build(copy.deepcopy(ds_cfg))
        key = getattr(dataset, 'data_fingerprint', None)
        return key() if callable(key) else None
    return None


def experiment_fingerprint_source(cfg: Config) -> dict:
    """Everything of the config except where and how it runs."""
    src = _plain(cfg.to_dict())
    for key in ('work_dir', 'launcher', 'resume', 'load_from', 'step0_store',
                'step0_store_timeout', 'env_cfg', 'default_hooks', 'log_level',
                'visualizer', 'log_processor', 'channels_last', 'cuda_graph',
                'val_batch_size'):
        src.pop(key, None)
    step0 = build_step_config(cfg, 0, work_dir='')
    src['init'] = init_sources(step0)  # the files' content, not their path
    src['world_size'] = get_world_size()
    src['total_batch_size'] = total_batch(step0, get_world_size())
    return src


#: The exemplar memory of a step, in its work dir.
MEMORY_FILE = 'memory.json'

#: Keys of a step config that say where and how it runs, not what it learns.
RUN_KEYS = ('work_dir', 'launcher', 'resume', 'load_from', 'env_cfg',
            'default_hooks', 'custom_hooks', 'log_level', 'visualizer',
            'log_processor', 'experiment_name', 'model_wrapper_cfg')


def step_fingerprint_source(step_cfg: Config) -> dict:
    """What decides step k's M_k given M_{k-1}: the step config without
    where and how it runs (:data:`RUN_KEYS`) and without the teacher's path
    (M_{k-1} is decided by the steps before)."""
    src = _plain(step_cfg.to_dict())
    for key in RUN_KEYS:
        src.pop(key, None)
    if isinstance(src.get('model'), dict):
        src['model'].pop('teacher_checkpoint', None)
    return src


def list_steps(cfg: Config) -> List[int]:
    """Steps an experiment runs: 0..K-1, or 0..``max_step`` if set."""
    num_steps = experiment_task(cfg).num_steps
    last = _get(cfg, 'max_step')
    if last is None:
        return list(range(num_steps))
    if not 0 <= last < num_steps:
        raise ValueError(f'max_step={last} is out of range; the task has '
                         f'steps 0..{num_steps - 1}.')
    return list(range(last + 1))
