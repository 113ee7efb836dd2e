"""Turn an incremental experiment config into the config of each step.

An experiment config is an ordinary mmseg config for step 0 (it trains M_0
with mmseg's stock ``tools/train.py``) plus a few top-level scalars:

.. code:: python

    task = '15-1'                 # or dict(steps=[[0, ...], [...]])
    setting = 'sequential'        # training split rule
    eval_protocol = 'seen_only'   # validation split rule
    iters_per_class = 1000        # step 0: |S_0| * it, step k: |U_k| * it
    iters_per_class_incremental = None  # k >= 1 (None: iters_per_class)
    lr_step0 = 1e-4               # poly (power 0.9) down to lr_min
    lr_incremental = 5e-5
    lr_min = 1e-6
    lr_decay_horizon = 1.0        # k >= 1: the poly spans this x the step
    classifier = 'grow'           # |S_k| outputs; 'fixed': all from step 0
    distill_resolution = None     # L'_D at 'logits' or 'labels' resolution
                                  # (None: the loss config's own)
    amp = None                    # mixed precision: 'bf16', 'fp16', 'auto'
    channels_last = False         # NHWC layout (ChannelsLastHook)
    cuda_graph = False            # encoders replayed from CUDA graphs
    val_batch_size = 1            # whole images per validation batch
    incremental = dict(           # DistillEncoderDecoder args for k >= 1
        distill_output=None, distill_feature=None,
        freeze_encoder=False, new_class_init='default',
        teacher_cache=None)       # dict(): replay M_{k-1}'s logits
    method = "L'_D"               # the name reports print

and the mmseg-style scalars ``data_root``, ``crop_size``, ``pretrained``
and ``total_batch_size``, which :mod:`.scalars` applies where they belong.

:func:`build_step_config` derives step k from it: the datasets' ``task`` /
``step`` / ``setting`` / ``eval_protocol``, the classifier size |S_k|, the
schedule (DESIGN §3) and, for k >= 1, a :class:`DistillEncoderDecoder` whose
teacher is M_{k-1}'s checkpoint. Every step config is a plain mmengine
config, so it also runs under mmseg's ``tools/train.py``.
"""
import copy
import hashlib
import json
from typing import Iterator, List, Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.dist import get_world_size
from mmseg.registry import DATASETS

from ..engine.hooks.cuda_graph_hook import CUDA_GRAPH_DISTRIBUTED
from ..tasks import IncrementalTask, get_task
from .init_files import init_sources
from .step_model import add_hook, set_step_model
from .schedule import patch_schedule
from .scalars import (apply_amp, apply_crop_size, apply_data_root,
                      apply_pretrained, apply_teacher_cache, apply_total_batch,
                      apply_val_batch_size, total_batch)

#: Top-level keys of an experiment config that are not mmengine's.
EXPERIMENT_KEYS = ('task', 'setting', 'eval_protocol', 'iters_per_class',
                   'lr_step0', 'lr_incremental', 'lr_min', 'incremental',
                   'step0_store', 'step0_store_timeout', 'max_step', 'method',
                   'lr_decay_horizon', 'classifier',
                   'iters_per_class_incremental', 'distill_resolution', 'amp',
                   'channels_last', 'cuda_graph', 'val_batch_size')
_DEFAULTS = dict(
    setting='sequential',
    eval_protocol='seen_only',
    iters_per_class=1000,
    lr_step0=1e-4,
    lr_incremental=5e-5,
    lr_min=1e-6,
    lr_decay_horizon=1.0,
    classifier='grow',
    amp=None,
    channels_last=False,
    cuda_graph=False,
    val_batch_size=1,
    incremental=dict())


def _get(cfg: Config, key: str):
    return cfg.get(key, copy.deepcopy(_DEFAULTS.get(key)))


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
    """The task of an experiment config (dataset name from its dataset)."""
    if 'task' not in cfg:
        raise ValueError('The config has no top-level `task`; add e.g. '
                         "task = '15-1' (see configs/il/).")
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
    """|S_0| * iters_per_class at step 0; |U_k| * iters_per_class_incremental
    after (``iters_per_class`` when that is None)."""
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
    _set_datasets(step_cfg, cfg, step)
    apply_crop_size(step_cfg)
    apply_pretrained(step_cfg, step)
    apply_total_batch(step_cfg,
                      get_world_size() if world_size is None else world_size)
    set_step_model(
        step_cfg,
        task,
        step,
        teacher_checkpoint,
        classifier=_get(cfg, 'classifier'),
        incremental=_plain(_get(cfg, 'incremental')),
        distill_resolution=_get(cfg, 'distill_resolution'))
    apply_teacher_cache(
        step_cfg,
        list(iter_incremental_datasets(step_cfg.get('train_dataloader', {}))))
    apply_amp(step_cfg, _get(cfg, 'amp'))
    # How the step runs, not what it learns: no part of any fingerprint.
    if _get(cfg, 'channels_last'):
        add_hook(step_cfg, dict(type='ChannelsLastHook'))
    if _get(cfg, 'cuda_graph'):
        if step_cfg.get('launcher', 'none') != 'none':
            raise ValueError(CUDA_GRAPH_DISTRIBUTED)
        add_hook(step_cfg, dict(type='CudaGraphHook'))
    # Whole-image validation of many shapes without cuDNN benchmarking
    # each (training keeps it); a user's own one is kept as given.
    add_hook(step_cfg, dict(type='ValCudnnBenchmarkHook'))
    apply_val_batch_size(step_cfg, _get(cfg, 'val_batch_size'))
    # No host sync per training iteration (on a GPU): batches copied
    # non-blocking, each iteration's losses logged one iteration late.
    add_hook(step_cfg, dict(type='NonBlockingCopyHook'))
    default_hooks = step_cfg.get('default_hooks') or ConfigDict()
    default_hooks.setdefault('runtime_info',
                             dict(type='DeferredRuntimeInfoHook'))
    step_cfg.default_hooks = default_hooks
    iters = step_iters(cfg, task, step)
    horizon = 1.0 if step == 0 else float(_get(cfg, 'lr_decay_horizon'))
    patch_schedule(
        step_cfg,
        iters=iters,
        lr=_get(cfg, 'lr_step0') if step == 0 else _get(cfg, 'lr_incremental'),
        lr_min=_get(cfg, 'lr_min'),
        horizon=round(horizon * iters))
    if step_cfg.get('launcher', 'none') != 'none' and \
            not torch.cuda.is_available():
        # CPU DDP (gloo): DistributedDataParallel takes no device_ids.
        step_cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None)
    return step_cfg


def _set_datasets(step_cfg: Config, cfg: Config, step: int) -> None:
    """Task, step, setting (train) / protocol (val, test), data_root."""
    found = []
    for split in ('train', 'val', 'test'):
        for ds in iter_incremental_datasets(
                step_cfg.get(f'{split}_dataloader', {})):
            ds['task'] = _plain(cfg['task'])
            ds['step'] = step
            if split == 'train':
                ds['setting'] = _get(cfg, 'setting')
            else:
                ds['eval_protocol'] = _get(cfg, 'eval_protocol')
            found.append(ds)
    apply_data_root(step_cfg, found)


def fingerprint(value) -> str:
    """A stable hash of a JSON-able config fragment."""
    text = json.dumps(_plain(value), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def step0_fingerprint_source(cfg: Config) -> dict:
    """What decides M_0: model, step-0 training data and schedule, seed.

    The task enters only through S_0 (step 0's split and labels depend on
    S_0 alone), so e.g. VOC 15-5 and 15-1 share M_0, as in the paper; and
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
        dataset=task.dataset)


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


def list_steps(cfg: Config) -> List[int]:
    """Steps an experiment runs: 0..K-1, or 0..``max_step`` if set."""
    num_steps = experiment_task(cfg).num_steps
    last = cfg.get('max_step')
    if last is None:
        return list(range(num_steps))
    if not 0 <= last < num_steps:
        raise ValueError(f'max_step={last} is out of range; the task has '
                         f'steps 0..{num_steps - 1}.')
    return list(range(last + 1))
