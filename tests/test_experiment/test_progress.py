"""Time: the experiment's progress line while training, and --dry-run's
estimate from a previous run's logged seconds per iteration."""
import glob
import json
import os
import os.path as osp
import re
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.hooks import LoggerHook

from mmseg_incremental.engine import ExperimentProgressHook
from mmseg_incremental.engine.hooks.experiment_progress_hook import \
    format_duration
from mmseg_incremental.experiment import IncrementalExperiment, describe_plan
from test_experiment.utils import ROOT, call_tool, tiny_cfg


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeRunner(SimpleNamespace):
    """What the hook reads of mmengine's Runner."""

    def __init__(self, max_iters: int, hooks=(), start: int = 0) -> None:
        lines = []
        super().__init__(
            iter=start,
            max_iters=max_iters,
            hooks=list(hooks),
            lines=lines,
            logger=SimpleNamespace(info=lines.append))


def _train(hook, runner, clock, seconds_per_iter):
    """Drive the hook through the runner's remaining iterations."""
    hook.before_train(runner)
    while runner.iter < runner.max_iters:
        clock.now += seconds_per_iter
        hook.after_train_iter(runner, runner.iter)
        runner.iter += 1
    hook.after_train(runner)


def test_eta_over_all_steps_hand_made():
    # Step 0 ran 10 iterations in 10 s earlier; step 1 (5 iterations) takes
    # 3 s an iteration; step 2 has 6 iterations left to come.
    clock = FakeClock(110.0)
    hook = ExperimentProgressHook(
        1, [10, 5, 6],
        interval=2,
        start_time=100.0,
        timed_seconds=10.0,
        timed_iters=10)
    hook.clock = clock
    runner = FakeRunner(max_iters=5)
    _train(hook, runner, clock, 3.0)
    # After iteration 2: 16 s over 12 iterations; 3 + 6 iterations left:
    # ETA = 9 * 16 / 12 = 12 s; elapsed = 116 - 100 = 16 s.
    # After 4: 22 s / 14, 7 left -> 11 s; after 5 (the step's last):
    # 25 s / 15, 6 left -> 10 s.
    assert runner.lines == [
        'Experiment: step 1/2 (iter 2/5), elapsed 0:00:16, ETA 0:00:12',
        'Experiment: step 1/2 (iter 4/5), elapsed 0:00:22, ETA 0:00:11',
        'Experiment: step 1/2 (iter 5/5), elapsed 0:00:25, ETA 0:00:10',
    ]
    # The next step's hook starts from this step's totals.
    assert (hook.timed_seconds, hook.timed_iters) == (25.0, 15)


def test_resumed_step_counts_only_its_own_iterations():
    # Resumed at iteration 3 of 8: the 3 done before are not timed here.
    clock = FakeClock(50.0)
    hook = ExperimentProgressHook(0, [8, 4], start_time=50.0)
    hook.clock = clock
    runner = FakeRunner(max_iters=8, hooks=[LoggerHook(interval=4)], start=3)
    _train(hook, runner, clock, 2.0)
    assert hook.interval == 4  # the LoggerHook's
    # Iteration 4: 2 s / 1 iteration, 4 + 4 left -> 16 s; iteration 8:
    # 10 s / 5, 4 left -> 8 s.
    assert runner.lines == [
        'Experiment: step 0/1 (iter 4/8), elapsed 0:00:02, ETA 0:00:16',
        'Experiment: step 0/1 (iter 8/8), elapsed 0:00:10, ETA 0:00:08',
    ]
    assert hook.timed_iters == 5


def test_format_duration():
    assert format_duration(0.4) == '0:00:00'
    assert format_duration(3 * 3600 + 61.6) == '3:01:02'
    assert format_duration(86400 + 5) == '1 day, 0:00:05'
    with pytest.raises(ValueError, match='steps 0..1'):
        ExperimentProgressHook(2, [3, 4])


def _write_scalars(path, lines):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(json.dumps(line) + '\n' for line in lines))


def test_dry_run_estimate_hand_made(embedded_voc, tmp_path):
    old = tmp_path / 'old'
    # Step 0: two starts (a resume), logged times 0.5 and 1.5; the val
    # line (no loss) and a line cut by a kill are ignored.
    _write_scalars(
        str(old / 'step_0' / '20260101_000000' / 'vis_data' / 'scalars.json'),
        [dict(loss=1.0, time=0.5, iter=1, step=1)])
    path = old / 'step_0' / '20260101_010000' / 'vis_data' / 'scalars.json'
    _write_scalars(
        str(path), [
            dict(loss=1.0, time=1.5, iter=2, step=2),
            dict(mIoU=5.0, time=99.0, step=2)
        ])
    with open(path, 'a') as f:
        f.write('{"loss": 1.0, "ti')
    _write_scalars(
        str(old / 'step_1' / '20260101_020000' / 'vis_data' / 'scalars.json'),
        [dict(loss=2.0, time=0.25, iter=1, step=1)])
    cfg = tiny_cfg('bench_15-1_ld.py', embedded_voc, iters_per_class=3)
    lines = describe_plan(cfg, str(tmp_path / 'new'), str(old)).splitlines()
    times = [line for line in lines if line.startswith('  time')]
    # Step 0: 48 iterations x 1 s; step 1: 3 x 0.25 s; steps 2..5 have no
    # record and take the incremental steps' 0.25 s.
    assert times == ['  time 0:00:48 (48 iterations x 1 s/iter)',
                     '  time 0:00:01 (3 iterations x 0.25 s/iter)'] + \
        ['  time 0:00:01 (3 iterations x 0.25 s/iter, from other steps)'] * 4
    # 48 + 5 x 0.75 = 51.75 s.
    assert f'total time 0:00:52 of training (s/iter logged in {old}; ' \
        'set-up and validation not included)' in lines
    assert not (tmp_path / 'new').exists()
    # Without a previous run.
    lines = describe_plan(cfg, str(tmp_path / 'new')).splitlines()
    assert lines.count('  time unknown (no previous run)') == 6
    assert 'total time unknown (no previous run)' in lines


def test_progress_in_log_and_dry_run_from_the_run(embedded_voc, tmp_path):
    work_dir = tmp_path / 'run'
    cfg = tiny_cfg('bench_15-1_ld.py', embedded_voc, max_step=1)
    IncrementalExperiment(cfg, str(work_dir)).run()
    # Step 0 trains 16 iterations, step 1 one; the LoggerHook's interval
    # (1 here) is the hook's.
    pattern = re.compile(r'Experiment: step (\d)/1 \(iter (\d+)/(\d+)\), '
                         r'elapsed \d+:\d\d:\d\d, ETA (\d+:\d\d:\d\d)$')
    for step, iters in ((0, 16), (1, 1)):
        logs = glob.glob(str(work_dir / f'step_{step}' / '*' / '*.log'))
        assert len(logs) == 1
        with open(logs[0]) as f:
            found = [pattern.search(line.rstrip()) for line in f]
        found = [m.groups() for m in found if m]
        assert [(int(s), int(i), int(n)) for s, i, n, _ in found] == \
            [(step, i, iters) for i in range(1, iters + 1)]
        if step == 1:
            assert found[-1][3] == '0:00:00'  # nothing left
        text = Config.fromfile(
            str(work_dir / f'step_{step}' / 'step_config.py')).pretty_text
        assert 'ExperimentProgressHook' not in text  # the Runner's only

    # --dry-run of a longer schedule, timed from this run's logs.
    recorded = {}
    for step in (0, 1):
        (path, ) = glob.glob(
            str(work_dir / f'step_{step}' / '*' / 'vis_data' / 'scalars.json'))
        with open(path) as f:
            records = [json.loads(line) for line in f]
        recorded[step] = [r['time'] for r in records if 'loss' in r]
        assert len(recorded[step]) == (16, 1)[step]
    per_iter = {k: sum(v) / len(v) for k, v in recorded.items()}
    longer = tiny_cfg(
        'bench_15-1_ld.py', embedded_voc, max_step=2, iters_per_class=500)
    text = describe_plan(longer, str(tmp_path / 'next'), str(work_dir))
    expected = [
        f'  time {format_duration(16 * 500 * per_iter[0])} (8000 '
        f'iterations x {per_iter[0]:.4g} s/iter)',
        f'  time {format_duration(500 * per_iter[1])} (500 iterations x '
        f'{per_iter[1]:.4g} s/iter)',
        f'  time {format_duration(500 * per_iter[1])} (500 iterations x '
        f'{per_iter[1]:.4g} s/iter, from other steps)'
    ]
    assert [ln for ln in text.splitlines() if ln.startswith('  time')] == \
        expected
    total = 8000 * per_iter[0] + 1000 * per_iter[1]
    assert f'total time {format_duration(total)} of training' in text

    # The tool: a work dir that holds a run times itself; --time-from names
    # another one.
    config = osp.join(ROOT, 'configs/embedded/bench_15-1_ld.py')
    opts = [
        '--cfg-options', f'data_root={embedded_voc}', 'max_step=1',
        'iters_per_class=500', 'total_batch_size=4'
    ]
    proc = call_tool('train_incremental.py', config, '--dry-run', '--work-dir',
                     work_dir, *opts)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expected[0] in proc.stdout.splitlines()
    proc = call_tool('train_incremental.py', config, '--dry-run', '--work-dir',
                     tmp_path / 'other', '--time-from', work_dir, *opts)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expected[1] in proc.stdout.splitlines()
    assert not (tmp_path / 'other').exists()
    proc = call_tool('train_incremental.py', config, '--dry-run',
                     '--time-from', tmp_path / 'missing', *opts)
    assert proc.returncode == 2
    assert 'no such folder' in proc.stderr
