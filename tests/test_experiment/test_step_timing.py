"""The phases of each step's wall time in ``step_done.json`` and its log."""
import glob
import re
from types import SimpleNamespace

import pytest
import torch

from mmseg_incremental.engine.hooks import StepTimingHook
from mmseg_incremental.engine.hooks.experiment_progress_hook import (
    fixed_overhead, format_step_timing)
from mmseg_incremental.experiment import IncrementalExperiment
from test_experiment.utils import load, tiny_cfg

TRAINED_KEYS = {
    'build_s', 'setup_s', 'first_iter_s', 'train_iters', 'iter_s',
    'train_end_s', 'val_s', 'total_s', 'overhead_s'
}
LINE = re.compile(r'Step (\d) timing: build [\d.]+ s, set-up [\d.]+ s, '
                  r'first iter [\d.]+ s, (\d+) iters x [\d.]+ s, end [\d.]+ '
                  r's, val [\d.]+ s, total [\d.]+ s \(fixed overhead '
                  r'-?[\d.]+ s\)$')


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cuda_syncs_only_at_the_first_and_last_iteration(monkeypatch):
    """A sync at every stamp would stall the GPU pipeline: the hook syncs
    before the first iteration and after the first and the last."""
    syncs = []
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda: syncs.append(1))
    runner = SimpleNamespace(model=torch.nn.Linear(2, 2), iter=0, max_iters=5)
    hook = StepTimingHook()
    hook.before_train(runner)
    hook._sync = True  # as for a model on a GPU
    for i in range(5):
        runner.iter = i
        hook.before_train_iter(runner, i)
        hook.after_train_iter(runner, i)
        syncs.append(f'after {i}')
    assert syncs == [
        1, 1, 'after 0', 'after 1', 'after 2', 'after 3', 1, 'after 4'
    ]


def test_phases_hand_made():
    # A CPU model: no CUDA synchronisation.
    runner = SimpleNamespace(model=torch.nn.Linear(2, 2))
    clock = FakeClock(10.0)
    hook = StepTimingHook()
    hook.clock = clock
    hook.before_train(runner)
    clock.now = 13.0  # set-up 3 s
    for i, end in enumerate((18.0, 18.5, 19.25, 19.75)):
        hook.before_train_iter(runner, i)
        clock.now = end
        hook.after_train_iter(runner, i)
    # First 5 s; then 0.5, 0.75, 0.5 s: median 0.5 s; 1.25 s to the end.
    assert hook.phases(10.0, 21.0) == dict(
        setup_s=3.0,
        first_iter_s=5.0,
        train_iters=4,
        iter_s=0.5,
        train_end_s=1.25)
    # Another call starts afresh; one iteration has no steady state.
    hook.before_train(runner)
    clock.now = 30.0
    hook.before_train_iter(runner, 0)
    clock.now = 32.0
    hook.after_train_iter(runner, 0)
    assert hook.phases(29.0, 32.5) == dict(
        setup_s=1.0,
        first_iter_s=2.0,
        train_iters=1,
        iter_s=None,
        train_end_s=0.5)
    # Resumed at the last iteration: nothing trained, all is set-up.
    hook.before_train(runner)
    assert hook.phases(40.0, 41.5) == dict(
        setup_s=1.5,
        first_iter_s=None,
        train_iters=0,
        iter_s=None,
        train_end_s=0.0)


def test_fixed_overhead_and_log_line():
    assert fixed_overhead(15.0, 40, 0.25, 5.0) == 5.0
    assert fixed_overhead(15.0, 1, None, 5.0) == 10.0
    assert fixed_overhead(15.0, 0, None, None) == 15.0
    timing = dict(
        build_s=1.23,
        setup_s=3.4,
        first_iter_s=5.6,
        train_iters=40,
        iter_s=0.0712,
        train_end_s=0.8,
        val_s=2.0,
        total_s=15.0,
        overhead_s=12.152)
    assert format_step_timing(2, timing) == (
        'Step 2 timing: build 1.2 s, set-up 3.4 s, first iter 5.6 s, 40 '
        'iters x 0.0712 s, end 0.8 s, val 2.0 s, total 15.0 s (fixed '
        'overhead 12.2 s)')
    assert format_step_timing(
        1, dict(timing, train_iters=1, iter_s=None, overhead_s=9.4)) == (
            'Step 1 timing: build 1.2 s, set-up 3.4 s, first iter 5.6 s, 1 '
            'iter, end 0.8 s, val 2.0 s, total 15.0 s (fixed overhead 9.4 s)')
    assert format_step_timing(0, dict(
        build_s=0.5, val_s=2.3, total_s=2.8)) == \
        'Step 0 timing: build 0.5 s, val 2.3 s, total 2.8 s'


def _check_trained(timing, iters):
    assert set(timing) == TRAINED_KEYS
    assert timing['train_iters'] == iters
    assert all(v >= 0 for v in timing.values())
    assert timing['total_s'] >= timing['build_s'] + timing['setup_s'] + \
        timing['first_iter_s'] + timing['train_end_s'] + timing['val_s']
    assert timing['overhead_s'] == pytest.approx(
        timing['total_s'] - timing['train_iters'] * timing['iter_s'], abs=1e-6)


def test_step_done_holds_timing(embedded_voc, tmp_path):
    store = str(tmp_path / 'store')
    # Step 0: 16 iterations, step 1: 3.
    cfg = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=1,
        iters_per_class_incremental=3,
        step0_store=store)
    work_dir = tmp_path / 'run'
    summary = IncrementalExperiment(cfg, str(work_dir)).run()
    done = {}
    for step, iters in ((0, 16), (1, 3)):
        done[step] = load(work_dir / f'step_{step}' / 'step_done.json')
        _check_trained(done[step]['timing'], iters)
        assert 'timing' not in summary['steps'][step]
        (log, ) = glob.glob(str(work_dir / f'step_{step}' / '*' / '*.log'))
        with open(log) as f:
            found = [LINE.search(line.rstrip()) for line in f]
        found = [m.groups() for m in found if m]
        assert found == [(str(step), str(iters))]
    # Kept on resume as it was.
    IncrementalExperiment(cfg, str(work_dir), resume=True).run()
    for step in (0, 1):
        assert load(work_dir / f'step_{step}' / 'step_done.json') == \
            done[step]
    # A reused M_0: the Runner's build and the validation only.
    reuse = tiny_cfg(
        'bench_15-1_ft.py', embedded_voc, max_step=0, step0_store=store)
    IncrementalExperiment(reuse, str(tmp_path / 'reuse')).run()
    reused = load(tmp_path / 'reuse' / 'step_0' / 'step_done.json')
    assert reused['reused'] is True
    timing = reused['timing']
    assert set(timing) == {'build_s', 'val_s', 'total_s'}
    assert all(v >= 0 for v in timing.values())
    assert timing['total_s'] >= timing['build_s'] + timing['val_s']
