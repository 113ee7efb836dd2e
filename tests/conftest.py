"""Shared fixtures: the embedded benchmark at test size, one step-0 store.

``make test`` runs the suite in 2 pytest-xdist worker processes on 2 cores
(``-n 2``). Each process then gets one torch thread (two OpenMP threads per
process on 2 shared cores train several times slower), and so do the
processes the tests start (``OMP_NUM_THREADS``): a torchrun or a killed
experiment of one worker runs beside the other worker's tests. Run alone,
pytest keeps every core.

The session fixtures that cost seconds (the benchmark, the M_0 models in
the step-0 store) are made once for all workers, in their common temporary
folder, under a file lock.
"""
import contextlib
import fcntl
import gc
import os
import os.path as osp
import warnings

import pytest
import torch
from mmseg.utils import register_all_modules

from mmseg_incremental.synthetic_voc import generate_benchmark

#: pytest-xdist's number of workers (unset without xdist).
WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
THREADS = max(1, (os.cpu_count() or 1) // WORKERS)
torch.set_num_threads(THREADS)
os.environ['OMP_NUM_THREADS'] = str(THREADS)  # the tests' subprocesses
os.environ['MKL_NUM_THREADS'] = str(THREADS)
# Build pipelines from mmseg's registries (LoadAnnotations is mmseg's).
register_all_modules(init_default_scope=True)


def pytest_collection_finish(session):
    """Freeze the objects of the imported modules out of the garbage
    collector; warn if ``--dist loadgroup`` does not group.

    mmengine's ``BaseDataset`` runs ``gc.collect()`` for each dataset it
    builds (``serialize_data``): for every step of an experiment, of a
    ``--dry-run`` and of a ``--check-splits``. In a process that imported
    every test module each such full collection takes ~0.3 s on these
    cores; the objects alive once collection is over (modules, classes,
    parametrize values) are never garbage, and frozen they are no longer
    scanned. What the tests create afterwards is collected as before.

    ``--dist loadgroup`` keeps a module's tests on one worker through a
    suffix pytest-xdist appends to their node ids, which pytest 9.2 drops
    (pytest-xdist#1386): the tests still pass, but each worker makes the
    module's fixtures.
    """
    gc.collect()
    gc.freeze()
    if not getattr(session.config.option, 'loadgroup', False):
        return
    lost = [
        item.nodeid for item in session.items
        if item.get_closest_marker('xdist_group') and '@' not in item.nodeid
    ]
    if lost:
        warnings.warn(
            pytest.PytestWarning(
                f'--dist loadgroup ignores the xdist_group of {lost[0]} '
                f'and {len(lost) - 1} more tests with pytest '
                f'{pytest.__version__} (pytest-xdist#1386); install '
                "'pytest<9.2' (setup.cfg's tests extra)."))


@pytest.fixture(scope='session')
def shared_tmp(tmp_path_factory):
    """A folder every xdist worker of this run sees (its own base temp
    without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if 'PYTEST_XDIST_WORKER' in os.environ else base


@contextlib.contextmanager
def file_lock(path):
    """An exclusive lock between the workers (``flock``, released when the
    holder ends, even if it is killed)."""
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope='session')
def embedded_voc(shared_tmp):
    """A small embedded benchmark (VOC tree): 400 train / 120 val images of
    32 px, made once for the run (the generator is idempotent)."""
    root = shared_tmp / 'embedded' / 'voc'
    os.makedirs(root.parent, exist_ok=True)
    with file_lock(str(root.parent / '.lock')):
        generate_benchmark(
            str(root), num_train=400, num_val=120, image_size=32, seed=0)
    return str(root)


@pytest.fixture(scope='session')
def step0_store(shared_tmp):
    """One step-0 store for the run, for the tests whose subject is not
    how M_0 is trained: an M_0 that several of them need (e.g. the tiny
    15-1 M_0 of ``tiny_cfg``) is trained once and then reused, also across
    the workers (the store's own lock makes the others wait for it)."""
    return osp.join(str(shared_tmp), 'step0_store')


@pytest.fixture(scope='session')
def tiny_m0(embedded_voc, step0_store, tmp_path_factory):
    """The tiny 15-1 M_0 of ``tiny_cfg`` (FT, L'_D, ... share it) in the
    session's store, and the step-0 metrics of an experiment that ran it
    (an independent value for the tests that train or evaluate it
    another way).

    Returns:
        dict: ``checkpoint`` (the store's ``M0.pth``), ``metrics``,
        ``cfg`` (FT's experiment config).
    """
    from mmseg_incremental.experiment import (IncrementalExperiment,
                                              Step0Store,
                                              step0_fingerprint_source)
    from test_experiment.utils import tiny_cfg
    cfg = tiny_cfg(
        'bench_15-1_ft.py', embedded_voc, max_step=0, step0_store=step0_store)
    work_dir = tmp_path_factory.mktemp('tiny_m0') / 'ft'
    summary = IncrementalExperiment(cfg, str(work_dir)).run()
    entry = Step0Store(step0_store).lookup(step0_fingerprint_source(cfg))
    assert entry is not None
    return dict(
        checkpoint=entry, metrics=summary['steps'][0]['metrics'], cfg=cfg)


@pytest.fixture(autouse=True)
def _presence_cache(shared_tmp, monkeypatch):
    """Keep the class-presence cache out of the user's home (one cache
    for the run: its files are written atomically)."""
    monkeypatch.setenv('MMSEG_INCREMENTAL_CACHE', str(shared_tmp / 'presence'))
