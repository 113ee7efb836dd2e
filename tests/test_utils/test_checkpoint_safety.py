# Copyright (c) OpenMMLab. All rights reserved.
"""mmengine checkpoints load under ``torch.load(weights_only=True)``; hostile
pickles are refused without running (``mmseg_incremental.utils.checkpoint``).
"""
import builtins
import contextlib
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint
from mmengine.testing.runner_test_case import ToyDataset, ToyModel

from mmseg_incremental.utils import (SAFE_ATTRIBUTES, register_safe_globals,
                                     restricted_getattr, safe_globals)

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _restored_global_instances():
    """Runners make themselves the current DefaultScope / MessageHub; put
    those globals back as other test files expect them."""
    saved = {
        cls: cls._instance_dict.copy()
        for cls in (DefaultScope, MessageHub)
    }
    try:
        yield
    finally:
        for cls, instances in saved.items():
            cls._instance_dict.clear()
            cls._instance_dict.update(instances)


@pytest.fixture(autouse=True)
def restore_global_instances():
    with _restored_global_instances():
        yield


class NumpyMetric(BaseMetric):
    """Returns numpy scalars, as mmseg's metrics do, so that the checkpoint's
    message hub holds numpy values."""

    def process(self, data_batch, data_samples) -> None:
        self.results.append(np.float64(len(data_samples)))

    def compute_metrics(self, results) -> dict:
        return dict(acc=np.float64(np.sum(results)) / 7, n=np.int64(12))


class StateRecorder(Hook):
    """Records the runner's state once training starts (after resuming)."""

    def before_train(self, runner) -> None:
        self.iter = runner.iter
        self.state_dict = {
            k: v.clone()
            for k, v in runner.model.state_dict().items()
        }
        self.momentum = {
            k: v['momentum_buffer'].clone()
            for k, v in runner.optim_wrapper.optimizer.state.items()
        }
        self.loss_history = runner.message_hub.get_scalar(
            'train/loss').data[0].copy()


def _make_runner(work_dir: Path, max_iters: int, **kwargs) -> Runner:
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='InfiniteSampler', shuffle=False),
        batch_size=3,
        num_workers=0)
    val_loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=3,
        num_workers=0)
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=val_loader,
        val_evaluator=[NumpyMetric()],
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(
            type='PolyLR', power=0.9, eta_min=1e-4, end=4, by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1),
        val_cfg=dict(),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        experiment_name=f'ckpt_safety_{uuid.uuid4().hex}',
        **kwargs)


@pytest.fixture(scope='module')
def runner_ckpt(tmp_path_factory) -> Path:
    """A checkpoint written by a real Runner after 2 iterations (validated
    after iteration 1, so val metrics are in its message hub)."""
    work_dir = tmp_path_factory.mktemp('runner')
    with _restored_global_instances():
        _make_runner(work_dir, max_iters=2).train()
    path = work_dir / 'iter_2.pth'
    assert path.is_file()
    return path


def test_runner_checkpoint_loads_with_default_weights_only(runner_ckpt):
    ckpt = torch.load(runner_ckpt)  # torch's default: weights_only=True
    assert ckpt['meta']['iter'] == 2
    hub = ckpt['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    assert loss.data[0].shape == (2, )
    # HistoryBuffer's statistics methods came back through getattr refs.
    assert loss.statistics('current') == loss.data[0][-1]
    assert loss.mean() == pytest.approx(loss.data[0].mean())
    val_acc = hub['log_scalars']['val/acc']
    assert val_acc.current() == pytest.approx(12 / 7)
    assert isinstance(hub['runtime_info']['eta'], np.float64)
    assert set(ckpt['state_dict']) == {
        'linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias'
    }


def test_load_checkpoint_and_resume_restore_values(runner_ckpt, tmp_path):
    ckpt = torch.load(runner_ckpt)
    model = ToyModel()
    load_checkpoint(model, str(runner_ckpt), map_location='cpu', strict=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, ckpt['state_dict'][name])

    recorder = StateRecorder()
    runner = _make_runner(
        tmp_path,
        max_iters=3,
        load_from=str(runner_ckpt),
        resume=True,
        custom_hooks=[recorder])
    runner.train()
    assert recorder.iter == 2
    for name, value in recorder.state_dict.items():
        torch.testing.assert_close(value, ckpt['state_dict'][name])
    saved_state = ckpt['optimizer']['state']
    assert len(recorder.momentum) == len(saved_state) == 4
    for i, buf in enumerate(recorder.momentum.values()):
        torch.testing.assert_close(buf, saved_state[i]['momentum_buffer'])
    np.testing.assert_array_equal(
        recorder.loss_history,
        ckpt['message_hub']['log_scalars']['train/loss'].data[0])
    assert runner.iter == 3  # trained exactly one more iteration


_PROBE = '''
import pickle, sys, torch
path = sys.argv[1]
try:
    torch.load(path)
except pickle.UnpicklingError as e:
    print('REFUSED_WITHOUT_ALLOWLIST:', 'Unsupported global' in str(e))
else:
    print('LOADED_WITHOUT_ALLOWLIST')
import mmseg_incremental.utils  # noqa: E402,F401
print('ITER_WITH_ALLOWLIST:', torch.load(path)['meta']['iter'])
'''


def test_allowlist_is_what_makes_loading_work(runner_ckpt):
    """In a fresh interpreter, plain torch.load fails until the plugin is
    imported: the allowlist is what makes the test above pass."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run([sys.executable, '-c', _PROBE,
                          str(runner_ckpt)],
                         capture_output=True,
                         text=True,
                         env=env,
                         cwd=str(REPO_ROOT),
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert 'REFUSED_WITHOUT_ALLOWLIST: True' in lines, out.stdout
    assert 'ITER_WITH_ALLOWLIST: 2' in lines, out.stdout


def test_numpy1_checkpoint_paths_load(tmp_path):
    """Checkpoints written under numpy 1.x name ``numpy.core.multiarray``."""
    path = tmp_path / 'np1.pth'
    obj = {'a': np.arange(3, dtype=np.int64), 'b': np.float32(0.5)}
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    raw = path.read_bytes()
    assert b'numpy._core.multiarray' in raw
    path.write_bytes(
        raw.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'))
    obj = torch.load(path)
    np.testing.assert_array_equal(obj['a'], [0, 1, 2])
    assert obj['b'] == np.float32(0.5)


# ---------------------------------------------------------------- hostile ---
class _Payload:
    """A pickle whose loading would create ``marker`` (via ``__reduce__``)."""

    def __init__(self, marker: Path, kind: str) -> None:
        self.marker = str(marker)
        self.kind = kind

    def __reduce__(self):
        code = f'open({self.marker!r}, "w").close()'
        if self.kind == 'os.system':
            return os.system, (f'touch {self.marker}', )
        if self.kind == 'subprocess.Popen':
            return subprocess.Popen, (['touch', self.marker], )
        if self.kind == 'builtins.eval':
            return builtins.eval, (code, )
        if self.kind == 'builtins.exec':
            return builtins.exec, (code, )
        if self.kind == 'numpy.save':
            return np.save, (self.marker, np.zeros(1))
        if self.kind == 'custom_reduce':
            return _write_marker, (self.marker, )
        raise ValueError(self.kind)


def _write_marker(marker: str) -> None:
    Path(marker).touch()


PAYLOADS = [
    'os.system', 'subprocess.Popen', 'builtins.eval', 'builtins.exec',
    'numpy.save', 'custom_reduce'
]


def _run_payload_unsafely(obj) -> None:
    """Proves a payload is live: plain pickle really runs it."""
    result = pickle.loads(pickle.dumps(obj, protocol=2))
    if isinstance(result, subprocess.Popen):
        result.wait()


@pytest.mark.parametrize('kind', PAYLOADS)
def test_hostile_pickle_is_refused_and_not_run(tmp_path, kind):
    live = tmp_path / 'live_marker.npy'
    _run_payload_unsafely(_Payload(live, kind))
    assert live.exists(), 'the payload must be able to create its marker'

    marker = tmp_path / 'marker.npy'  # np.save appends .npy
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Payload(marker, kind)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    assert not marker.exists()


@pytest.mark.parametrize('kind', ['os.system', 'builtins.eval'])
def test_hostile_payload_in_real_checkpoint_refused(runner_ckpt, tmp_path,
                                                    kind):
    """A real mmengine checkpoint with a payload in ``meta``: neither
    mmengine's load_checkpoint nor resuming a Runner executes it."""
    ckpt = torch.load(runner_ckpt)
    marker = tmp_path / 'marker.npy'  # np.save appends .npy
    ckpt['meta']['evil'] = _Payload(marker, kind)
    path = tmp_path / 'evil_iter_2.pth'
    torch.save(ckpt, path)

    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(ToyModel(), str(path), map_location='cpu')
    runner = _make_runner(
        tmp_path / 'work', max_iters=3, load_from=str(path), resume=True)
    with pytest.raises(pickle.UnpicklingError):
        runner.train()
    assert not marker.exists()


class _GetattrPayload:
    """``getattr(owner, name)`` as a pickle, optionally called with
    ``call_args``."""

    def __init__(self, owner, name, call_args=None) -> None:
        self.owner, self.name, self.call_args = owner, name, call_args

    def __reduce__(self):
        if self.call_args is None:
            return getattr, (self.owner, self.name)
        # The reference itself pickles as getattr(owner, name) (protocol 2).
        return getattr(self.owner, self.name), self.call_args


@pytest.mark.parametrize('owner,name', [
    (HistoryBuffer, '__init__'),
    (HistoryBuffer, 'update'),
    (HistoryBuffer, 'register_statistics'),
    (HistoryBuffer, '__class__'),
    (HistoryBuffer, '__subclasses__'),
    (np.ndarray, 'tofile'),
    (torch.Tensor, 'min'),
])
def test_getattr_only_reaches_listed_attributes(tmp_path, owner, name):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrPayload(owner, name)}, path)
    with pytest.raises(pickle.UnpicklingError, match='Refusing getattr'):
        torch.load(path)


def test_getattr_result_cannot_be_called(tmp_path):
    """``HistoryBuffer.min`` may be referenced, never called by the pickle."""
    path = tmp_path / 'call.pth'
    torch.save({'x': _GetattrPayload(HistoryBuffer, 'min', (None, ))}, path)
    with pytest.raises(pickle.UnpicklingError, match='unrecognized function'):
        torch.load(path)
    # The reference alone is fine.
    torch.save({'x': _GetattrPayload(HistoryBuffer, 'min')}, path)
    assert torch.load(path)['x'] is HistoryBuffer.min


def test_restricted_getattr():
    for name in ('min', 'max', 'current', 'mean'):
        assert restricted_getattr(HistoryBuffer,
                                  name) is getattr(HistoryBuffer, name)
    assert SAFE_ATTRIBUTES == {
        HistoryBuffer: frozenset({'min', 'max', 'current', 'mean'})
    }
    refused = [(HistoryBuffer, '__init__'), (HistoryBuffer.min, '__globals__'),
               (HistoryBuffer(), 'min'), (os, 'system'), (builtins, 'eval'),
               (HistoryBuffer, None), ([], 'append')]
    for obj, name in refused:
        with pytest.raises(pickle.UnpicklingError, match='Refusing getattr'):
            restricted_getattr(obj, name)


def test_register_is_idempotent_and_never_allows_real_getattr():
    before = torch.serialization.get_safe_globals()
    try:
        assert register_safe_globals() is True
        once = torch.serialization.get_safe_globals()
        assert register_safe_globals() is True
        twice = torch.serialization.get_safe_globals()
        assert len(once) == len(twice) and set(once) == set(twice)
        assert set(safe_globals()) <= set(twice)
        # builtins.getattr resolves to the restricted stand-in only.
        assert getattr not in twice
        bound = [
            f for f in twice
            if isinstance(f, tuple) and f[1] == 'builtins.getattr'
        ]
        assert bound == [(restricted_getattr, 'builtins.getattr')]
        # Nothing from the blocked or code-running modules is listed.
        names = {
            f[1]
            if isinstance(f, tuple) else f'{f.__module__}.{f.__qualname__}'
            for f in safe_globals()
        }
        assert not {
            n
            for n in names
            if n.split('.')[0] in ('os', 'posix', 'subprocess', 'sys')
        }
        assert 'builtins.eval' not in names and 'builtins.exec' not in names
        # After a clear, registering again restores the allowlist.
        torch.serialization.clear_safe_globals()
        register_safe_globals()
        assert set(torch.serialization.get_safe_globals()) == set(
            safe_globals())
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)
