"""The top-level scalars a user sets reach the parts of the config they decide.

mmengine evaluates a ``_base_`` file before its child, so a scalar that a
leaf config or ``--cfg-options`` overrides (``crop_size=(513, 513)``,
``pretrained='r101.pth'``) does not change the pipeline or model entries
that the base built from it. The experiment applies these scalars to every
step config instead:

===================  =====================================================
``data_root``        every incremental dataset of every split whose
                     ``data_root`` is the config's top-level default or
                     unset; a dataset's own value is kept
                     (:func:`apply_data_root`; None: keep every dataset's)
``crop_size``        every ``crop_size`` of the training pipeline
                     (``RandomCrop``) and the preprocessor's padding size
``pretrained``       ``model.pretrained`` of step 0 (later steps start from
                     M_{k-1})
``total_batch_size`` the batch summed over all processes: each of W
                     processes loads ``total_batch_size / W`` images (the
                     paper's 4 on 1, 2 or 4 GPUs); None: the dataloader's
                     ``batch_size`` is per process (mmseg's convention)
``amp``              mixed precision of every step: ``optim_wrapper``
                     becomes mmengine's ``AmpOptimWrapper`` (GPU) or
                     :class:`AutocastOptimWrapper` (CPU, bf16), its
                     optimizer and other arguments kept
``val_batch_size``   images per validation/test batch (default 1, mmseg's
                     one-image evaluation): above 1, batches of equally
                     sized images (:class:`SameShapeBatchSampler`), each
                     predicted as alone
===================  =====================================================

A method's ``teacher_cache`` (``incremental = dict(teacher_cache=...)``)
gets its folder under the step's work dir and the fixed augmentation it
needs on the training datasets (:func:`apply_teacher_cache`).

Replaced values are logged; contradictions that have no safe reading
(``pretrained`` set twice, a batch that W does not divide) raise.
:mod:`.settings` declares the scalars' types and defaults.
"""
import ast
import functools
import logging
import os
import os.path as osp
from typing import FrozenSet, Iterator, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.logging import print_log

#: Values of the top-level ``amp``.
AMP_MODES = (None, 'bf16', 'fp16', 'auto')
#: Optim wrappers that ``amp`` may replace.
_PLAIN_WRAPPERS = ('OptimWrapper', 'AmpOptimWrapper', 'AutocastOptimWrapper')


def _log(text: str) -> None:
    print_log(text, logger='current', level=logging.INFO)


def _pipelines(cfg) -> Iterator[list]:
    """Every ``pipeline`` list inside a dataloader/dataset config."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('pipeline'), list):
            yield cfg['pipeline']
        for key in ('dataset', 'datasets'):
            if key in cfg:
                yield from _pipelines(cfg[key])
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            yield from _pipelines(item)


def _own_data_root(path: str) -> Optional[str]:
    """The ``data_root`` that the config file ``path`` itself assigns at
    top level (None if it assigns none)."""
    if not path.endswith('.py'):
        try:
            return Config.fromfile(path).get('data_root')
        except Exception:  # not a config mmengine reads alone
            return None
    with open(path, encoding='utf-8') as f:
        body = ast.parse(f.read()).body
    nodes = [
        node.value for node in body if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == 'data_root'
            for t in node.targets)
    ]
    if not nodes:
        return None
    try:
        value = ast.literal_eval(nodes[-1])
        if not isinstance(value, str) or '{{' not in value:
            return value
    except (ValueError, TypeError, SyntaxError):  # an expression: mmengine
        pass
    try:
        return Config.fromfile(path).get('data_root')
    except Exception:  # a base that reads its siblings' variables
        return None


@functools.lru_cache(maxsize=64)
def _chain_data_roots(filename: str, mtime_ns: int) -> FrozenSet[str]:
    roots, todo, seen = set(), [filename], set()
    while todo:
        path = todo.pop()
        if path in seen or not osp.isfile(path):
            continue
        seen.add(path)
        value = _own_data_root(path)
        if isinstance(value, str):
            roots.add(value)
        try:  # the bases as mmengine resolves them (pkg:: included)
            todo += [
                Config._get_cfg_path(base, path)[0]
                for base in Config._get_base_files(path)
            ]
        except Exception:  # unresolvable: loading the config said so
            continue
    return frozenset(roots)


def config_data_roots(filename: Optional[str]) -> FrozenSet[str]:
    """The top-level ``data_root`` values that the config file and each of
    its ``_base_`` files assign (as written, before any override): the
    defaults that the datasets of those files were built from."""
    if not filename or not osp.isfile(filename):
        return frozenset()
    filename = osp.abspath(filename)
    return _chain_data_roots(filename, os.stat(filename).st_mtime_ns)


def apply_data_root(step_cfg: Config, datasets: List[Tuple[str,
                                                           dict]]) -> None:
    """Point the incremental datasets that follow the top-level
    ``data_root`` at its value.

    mmengine evaluates a base before its child, so a dataset written as
    ``data_root=data_root`` in a base keeps the base's value when a leaf
    or ``--cfg-options`` sets the top-level ``data_root``. The rule:

    - a dataset without a ``data_root``, or whose ``data_root`` is a
      top-level ``data_root`` of the config file or of one of its bases
      (:func:`config_data_roots`: the default it was built from), gets the
      top-level value (an INFO line when it changes);
    - a dataset whose ``data_root`` was set for that dataset (``--cfg-options
      train_dataloader.dataset.data_root=X``, or ``data_root=X`` written in
      a dataloader) keeps it, as in mmseg, with an INFO line naming both
      values: an explicit dataset-level value is never replaced;
    - a top-level ``data_root = None`` leaves every dataset as it is.

    Args:
        step_cfg (Config): The step's config (its ``filename`` is the
            experiment config's).
        datasets (list[tuple[str, dict]]): ``(dataloader name, dataset)``
            of every incremental dataset, edited in place.
    """
    root = step_cfg.get('data_root')
    if root is None:
        return
    defaults = config_data_roots(step_cfg.filename)
    for loader, ds in datasets:
        own = ds.get('data_root')
        if own == root:
            continue
        if own is None or own in defaults:
            _log(f'data_root={root!r} replaces {own!r} of the '
                 f'{ds.get("type")} of {loader}.')
            ds['data_root'] = root
        else:
            _log(f'The {ds.get("type")} of {loader} keeps its own '
                 f'data_root={own!r} (set for that dataset; the top-level '
                 f'data_root={root!r} applies to the others).')


def apply_crop_size(step_cfg: Config) -> None:
    """Drive the training crop and the preprocessor's size by ``crop_size``."""
    crop = step_cfg.get('crop_size')
    if crop is None:
        return
    crop = tuple(crop) if isinstance(crop, (list, tuple)) else (crop, crop)
    for pipeline in _pipelines(step_cfg.get('train_dataloader', {})):
        for transform in pipeline:
            if 'crop_size' in transform and \
                    tuple(transform['crop_size']) != crop:
                _log(f'crop_size={crop} replaces {transform["type"]}'
                     f'(crop_size={tuple(transform["crop_size"])}).')
                transform['crop_size'] = crop
    for pre in (step_cfg.get('model', {}).get('data_preprocessor'),
                step_cfg.get('data_preprocessor')):
        if isinstance(pre, dict) and 'size_divisor' not in pre:
            pre['size'] = crop


def apply_pretrained(step_cfg: Config, step: int) -> None:
    """Step 0's ``model.pretrained`` from the top-level ``pretrained``."""
    path = step_cfg.get('pretrained')
    model = step_cfg.model
    if step > 0 or path is None:
        return
    current = model.get('pretrained')
    if current not in (None, path):
        raise ValueError(
            f'pretrained={path!r} and model.pretrained={current!r} '
            'disagree; set only the top-level pretrained (the experiment '
            'passes it to the model of step 0).')
    model['pretrained'] = path


def per_process_batch(total: Optional[int], batch_size: int,
                      world_size: int) -> int:
    """The dataloader batch of each of ``world_size`` processes.

    Args:
        total (int, optional): ``total_batch_size``; None keeps
            ``batch_size`` per process.
        batch_size (int): The dataloader's ``batch_size``.
        world_size (int): The number of processes W.

    Raises:
        ValueError: When W does not divide ``total``.
    """
    if total is None:
        return batch_size
    total = int(total)
    if total < 1 or total % world_size:
        fits = [w for w in range(1, total + 1) if total % w == 0]
        raise ValueError(
            f'total_batch_size={total} cannot be split evenly over '
            f'{world_size} processes; run {", ".join(map(str, fits))} '
            f'processes, or set total_batch_size to a multiple of '
            f'{world_size} (the schedule keeps its lr: scale lr_step0 / '
            'lr_incremental yourself), or total_batch_size=None to make '
            'train_dataloader.batch_size a per-process batch (mmseg\'s '
            'convention; the total then grows with the world size).')
    return total // world_size


def apply_total_batch(step_cfg: Config, world_size: int) -> None:
    """Split ``total_batch_size`` over the processes."""
    loader = step_cfg.train_dataloader
    batch = per_process_batch(
        step_cfg.get('total_batch_size'), loader.batch_size, world_size)
    if batch != loader.batch_size:
        _log(f'total_batch_size={step_cfg.total_batch_size} over '
             f'{world_size} processes: train_dataloader.batch_size '
             f'{loader.batch_size} -> {batch}.')
        loader.batch_size = batch


def total_batch(cfg: Config, world_size: int) -> int:
    """The batch summed over all processes."""
    if cfg.get('total_batch_size') is not None:
        return int(cfg.total_batch_size)
    return int(cfg.train_dataloader.batch_size) * world_size


def amp_dtype(amp: Optional[str],
              device: Optional[str] = None) -> Optional[str]:
    """The autocast dtype that ``amp`` means on ``device``.

    Args:
        amp (str, optional): None (fp32), ``'bf16'``, ``'fp16'`` or
            ``'auto'`` (bf16 where the device supports it -- a CUDA GPU
            with ``torch.cuda.is_bf16_supported()``, always on the CPU --
            fp16 with dynamic loss scaling otherwise).
        device (str, optional): ``'cuda'``, ``'cpu'``, ... Defaults to
            mmengine's ``get_device()``.

    Returns:
        str, optional: ``'bfloat16'``, ``'float16'`` or None.
    """
    if amp not in AMP_MODES:
        raise ValueError(f'amp={amp!r} is unknown; use None (fp32), '
                         "'bf16', 'fp16' or 'auto' (bf16 where supported, "
                         'else fp16).')
    if amp is None:
        return None
    device = device or get_device()
    bf16_ok = device != 'cuda' or torch.cuda.is_bf16_supported()
    if amp == 'auto':
        return 'bfloat16' if bf16_ok else 'float16'
    if amp == 'bf16' and not bf16_ok:
        raise ValueError("amp='bf16': this GPU does not support bfloat16; "
                         "use amp='fp16' or 'auto'.")
    if amp == 'fp16' and device == 'cpu':
        raise ValueError("amp='fp16' needs a GPU (mmengine's autocast runs "
                         "only bf16 on the CPU); use amp='bf16' or 'auto'.")
    return 'bfloat16' if amp == 'bf16' else 'float16'


def apply_amp(step_cfg: Config, amp: Optional[str]) -> None:
    """Mixed precision for the step: the ``optim_wrapper`` becomes
    mmengine's ``AmpOptimWrapper`` (``dtype``; fp16 with
    ``loss_scale='dynamic'``), or on the CPU, where ``AmpOptimWrapper``
    refuses to run, :class:`AutocastOptimWrapper` (bf16, no loss scaler).
    The optimizer, ``clip_grad``, ``paramwise_cfg``... are kept."""
    device = get_device()
    dtype = amp_dtype(amp, device)
    if dtype is None:
        return
    wrapper = step_cfg.optim_wrapper
    old = wrapper.get('type', 'OptimWrapper')
    if old not in _PLAIN_WRAPPERS:
        raise ValueError(
            f'amp={amp!r} turns optim_wrapper into an AmpOptimWrapper, but '
            f'it is a {old!r}; set amp=None and configure mixed precision '
            'in that wrapper.')
    if device == 'cpu':
        wrapper['type'] = 'AutocastOptimWrapper'
        wrapper.pop('loss_scale', None)
    else:
        wrapper['type'] = 'AmpOptimWrapper'
        if dtype == 'float16':
            wrapper.setdefault('loss_scale', 'dynamic')
    wrapper['dtype'] = dtype
    _log(f'amp={amp!r} on {device}: optim_wrapper {old} -> '
         f'{wrapper["type"]}(dtype={dtype!r}).')


def apply_teacher_cache(step_cfg: Config, train_datasets: List[dict]) -> None:
    """A ``teacher_cache`` of the step's model gets its folder,
    ``<work_dir>/teacher_cache`` unless it names one (``dir=None``: in
    memory), and every training dataset one fixed augmentation per image
    (``augment_seed``: ``randomness.seed``, or 0)."""
    cache = step_cfg.model.get('teacher_cache')
    if cache is None:
        return
    if 'dir' not in cache:
        cache['dir'] = osp.join(step_cfg.work_dir, 'teacher_cache')
    seed = (step_cfg.get('randomness') or {}).get('seed') or 0
    for ds in train_datasets:
        ds['augment_seed'] = seed
    _log(f'teacher_cache in {cache["dir"] or "memory"}: each training '
         f'image gets one fixed augmentation (augment_seed={seed}).')


def apply_val_batch_size(step_cfg: Config, batch_size) -> None:
    """Validation and test batches of ``batch_size`` equally sized whole
    images (:class:`~mmseg_incremental.datasets.SameShapeBatchSampler`);
    1 leaves the dataloaders as they are."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or \
            batch_size < 1:
        raise ValueError(f'val_batch_size={batch_size!r}: use a positive '
                         'int (1: one image at a time, as mmseg).')
    if batch_size == 1:
        return
    loaders = {
        split: step_cfg.get(f'{split}_dataloader')
        for split in ('val', 'test') if step_cfg.get(f'{split}_dataloader')
    }
    for split, loader in loaders.items():  # check all before changing any
        own = loader.get('batch_sampler')
        if own is not None and own.get('type') != 'SameShapeBatchSampler':
            raise ValueError(
                f'val_batch_size={batch_size} batches {split}_dataloader by '
                f"image shape, but it has its own batch_sampler {own!r}; "
                'set val_batch_size=1 or remove that batch_sampler.')
    for loader in loaders.values():
        loader['batch_size'] = batch_size
        loader['batch_sampler'] = dict(type='SameShapeBatchSampler')
