"""The faults of a real cluster, with real processes and real signals
(issue 14): a kill inside a checkpoint write, a truncated or deleted
``last_checkpoint`` target, a second run on a live folder, two experiments
sharing one step-0 store, an unwritable work dir, a failed report write.

Every fault is placed by a hook of :mod:`fault_hooks` or a handshake
through files, never by timing; every recovered run is checked against an
uninterrupted one (training is deterministic on CPU).
"""
import errno
import hashlib
import json
import os
import re
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from mmseg_incremental.experiment import (IncrementalExperiment, Step0Store,
                                          experiment_task)
from mmseg_incremental.experiment import step0_store as step0_store_module
from mmseg_incremental.experiment.resume import (find_resume_checkpoint,
                                                 is_loadable)
from mmseg_incremental.experiment.summary import write_summary
from mmseg_incremental.reporting import write_report
from mmseg_incremental.utils import atomic_io
from mmseg_incremental.utils.errors import DiskFull, PREEMPTED_EXIT_CODE
from test_experiment.utils import load, tiny_cfg

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
# A 2-step task with a short step 0 (3 classes, 12 iterations) so that the
# faults of step 1 (4 iterations, checkpoints iter_2 and iter_4) cost
# seconds.
LEAF = """_base_ = ['{root}/configs/_base_/embedded_deeplabv2_tiny.py',
            '{root}/configs/_base_/methods/{method}.py']
task = dict(name='3-1', steps=[[0, 1, 2], [3]])
"""
OPTS = {
    'iters_per_class': 4,
    'default_hooks.checkpoint.interval': 2,
    'default_hooks.checkpoint.max_keep_ckpts': 2,
}
#: Seconds a child may take for one phase (start-up to a pause, a resumed
#: step 1 of 4 iterations, ...): they take seconds; a guard against a hung
#: child, never a synchronisation. Every wait below fails after it with
#: what the child printed.
WAIT_S = 90

# The module's fixtures (an uninterrupted reference run, a killed one) are
# shared by its tests: one pytest-xdist worker runs them all.
pytestmark = pytest.mark.xdist_group('faults')


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """One intra-op thread here and in the children: runs compare bit for
    bit, and on 2 shared cores 2 OpenMP threads train ~6x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def configs(tmp_path_factory):
    """``ld.py`` and ``ft.py``: the task above with L'_D and FT."""
    folder = tmp_path_factory.mktemp('configs')
    for method in ('ld', 'ft'):
        (folder / f'{method}.py').write_text(
            LEAF.format(root=ROOT, method=method))
    return folder


def _experiment_cmd(config,
                    work_dir,
                    data_root,
                    store,
                    resume=False,
                    fault=None,
                    **opts):
    """``tools/train_incremental.py`` under :mod:`fault_hooks`."""
    options = dict(
        OPTS,
        total_batch_size=4,
        data_root=data_root,
        step0_store=store,
        **opts)
    options['model.data_preprocessor.size'] = '(32,32)'
    options['default_hooks.logger.interval'] = 1
    if fault and 'Pause' in fault['type']:
        fault = dict(max_wait=WAIT_S, **fault)  # a pause ends in time
    for key, value in (fault or {}).items():
        options[f'default_hooks.fault.{key}'] = value
    cmd = [
        sys.executable, '-m', 'fault_hooks',
        osp.join(ROOT, 'tools', 'train_incremental.py'),
        str(config), '--work-dir',
        str(work_dir)
    ] + (['--resume'] if resume else [])
    return cmd + ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def _env():
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([ROOT, HERE]),
        OMP_NUM_THREADS='1')


def _tail(log_file, chars=3000):
    with open(log_file) as f:
        return f.read()[-chars:]


def _kill_run(*args, **kwargs):
    """A child experiment that must die of SIGKILL."""
    try:
        proc = subprocess.run(
            _experiment_cmd(*args, **kwargs),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=WAIT_S)
    except subprocess.TimeoutExpired as hung:
        out = (hung.stdout or b'') + (hung.stderr or b'')
        pytest.fail(f'the child was not killed within {WAIT_S} s; its '
                    f'output:\n{out.decode(errors="replace")[-3000:]}')
    assert proc.returncode == -signal.SIGKILL, (proc.stdout +
                                                proc.stderr)[-3000:]


def _start(log_file, *args, **kwargs):
    """A child experiment, its stdout and stderr into ``log_file``."""
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(
            _experiment_cmd(*args, **kwargs),
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT)
    proc.log_file = log_file
    return proc


def _wait_until(done, proc, what):
    """Poll ``done()`` until true; fail, with the child's output, when
    ``proc`` ends first or after ``WAIT_S`` seconds."""
    deadline = time.monotonic() + WAIT_S
    while not done():
        if proc.poll() is not None:
            pytest.fail(f'the child ended with {proc.returncode} before '
                        f'{what}; its output:\n{_tail(proc.log_file)}')
        if time.monotonic() > deadline:
            pytest.fail(f'no {what} within {WAIT_S} s; the child '
                        f'printed:\n{_tail(proc.log_file)}')
        time.sleep(0.05)


def _wait_for_file(path, proc):
    _wait_until(lambda: osp.exists(path), proc, f'file {path}')


def _wait_for_line(proc, text):
    """The first line of the child's output that holds ``text``."""
    found = []

    def seen():
        with open(proc.log_file) as f:
            found[:] = [line for line in f if text in line]
        return bool(found)

    _wait_until(seen, proc, f'line with {text!r}')
    return found[0]


def _wait_for_exit(proc):
    """The child's exit status; fails if it runs past ``WAIT_S``."""
    try:
        return proc.wait(WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f'the child did not end within {WAIT_S} s; its '
                    f'output:\n{_tail(proc.log_file)}')


def _metrics(work_dir):
    return [
        s['metrics'] for s in load(osp.join(work_dir, 'summary.json'))['steps']
    ]


def _resume(reference, work_dir):
    """``--resume`` in this process; the ``Step 1:`` line of its log."""
    IncrementalExperiment(reference['cfg'], str(work_dir), resume=True).run()
    lines = []
    for folder, _, files in os.walk(work_dir / 'step_1'):
        for name in files:
            if name.endswith('.log'):
                with open(osp.join(folder, name)) as f:
                    lines += [ln for ln in f if 'Step 1: ' in ln]
    assert len(lines) == 1, lines
    return lines[0].rstrip('\n')


@pytest.fixture(scope='module')
def reference(configs, embedded_voc, tmp_path_factory):
    """An uninterrupted run; its M_0 in a store the faulty runs reuse."""
    base = tmp_path_factory.mktemp('reference')
    store = str(base / 'store')
    cfg = tiny_cfg(
        str(configs / 'ld.py'), embedded_voc, step0_store=store, **OPTS)
    IncrementalExperiment(cfg, str(base / 'full')).run()
    return dict(
        store=store,
        metrics=_metrics(base / 'full'),
        cfg=cfg,
        config=configs / 'ld.py',
        summary=load(base / 'full' / 'summary.json'))


def test_kill_inside_a_checkpoint_write(reference, embedded_voc, tmp_path):
    work_dir = tmp_path / 'd'
    step1 = work_dir / 'step_1'
    _kill_run(
        reference['config'],
        work_dir,
        embedded_voc,
        reference['store'],
        fault=dict(
            type='SigkillHook',
            step_dir='step_1',
            at_iter=4,
            where='mid_write'))
    # Half of iter_4 reached the disk, under its temporary name only.
    assert sorted(f for f in os.listdir(step1)
                  if 'iter' in f) == ['iter_2.pth', 'iter_4.pth.tmp']
    assert not is_loadable(str(step1 / 'iter_4.pth.tmp'))
    assert (step1 / 'last_checkpoint').read_text() == str(step1 / 'iter_2.pth')
    assert is_loadable(str(step1 / 'iter_2.pth'))

    line = _resume(reference, work_dir)
    assert line.endswith(f' - INFO - Step 1: resuming from '
                         f'{step1 / "iter_2.pth"}.')
    assert sorted(f for f in os.listdir(step1)
                  if 'iter' in f) == ['iter_2.pth', 'iter_4.pth']
    assert _metrics(work_dir) == reference['metrics']


@pytest.fixture(scope='module')
def killed_after_iter_4(reference, embedded_voc, tmp_path_factory):
    """A run SIGKILLed after step 1's last iteration was checkpointed."""
    work_dir = tmp_path_factory.mktemp('killed') / 'd'
    _kill_run(
        reference['config'],
        work_dir,
        embedded_voc,
        reference['store'],
        fault=dict(type='SigkillHook', step_dir='step_1', at_iter=4))
    step1 = work_dir / 'step_1'
    assert (step1 / 'last_checkpoint').read_text() == str(step1 / 'iter_4.pth')
    assert sorted(f for f in os.listdir(step1)
                  if 'iter' in f) == ['iter_2.pth', 'iter_4.pth']
    assert not (step1 / 'step_done.json').exists()
    return work_dir


def _truncate(path):
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize('damage', ['truncated', 'deleted', 'none_left'])
def test_resume_validates_last_checkpoint(reference, killed_after_iter_4,
                                          tmp_path, damage):
    """The states mmengine's own hook leaves (issue 14), made by hand."""
    work_dir = tmp_path / 'd'
    shutil.copytree(killed_after_iter_4, work_dir)
    step1 = work_dir / 'step_1'
    named = step1 / 'iter_4.pth'
    (step1 / 'last_checkpoint').write_text(str(named))
    if damage == 'deleted':
        os.remove(named)
    else:
        _truncate(named)
    if damage == 'none_left':
        _truncate(step1 / 'iter_2.pth')

    line = _resume(reference, work_dir)
    state = 'missing' if damage == 'deleted' else 'unreadable'
    assert f' - WARNING - Step 1: last_checkpoint names {named}, which is ' \
           f'{state}; ' in line
    if damage == 'none_left':
        teacher = load(work_dir / 'step_0' / 'step_done.json')['checkpoint']
        assert line.endswith('no loadable checkpoint is left, so the step '
                             f'restarts from its teacher M_0 ({teacher}).')
    else:
        assert line.endswith(f'resuming from {step1 / "iter_2.pth"}, the '
                             'newest loadable checkpoint of the step.')
    assert _metrics(work_dir) == reference['metrics']


def _snapshot(folder):
    return {
        osp.relpath(osp.join(d, f), folder): os.stat(osp.join(d,
                                                              f)).st_mtime_ns
        for d, _, files in os.walk(folder)
        for f in files
    }


def test_second_run_on_a_live_folder(reference, embedded_voc, tmp_path):
    work_dir = tmp_path / 'd'
    ready = tmp_path / 'ready'
    first = _start(
        tmp_path / 'first.log',
        reference['config'],
        work_dir,
        embedded_voc,
        reference['store'],
        fault=dict(
            type='PauseHook',
            step_dir='step_1',
            at_iter=2,
            ready_file=str(ready)))
    try:
        _wait_for_file(ready, first)
        before = _snapshot(work_dir)
        for resume in (True, False):
            started = time.monotonic()
            with pytest.raises(RuntimeError) as refused:
                IncrementalExperiment(
                    reference['cfg'], str(work_dir), resume=resume).run()
            assert time.monotonic() - started < 10  # refused, not queued
            message = str(refused.value)
            assert message.startswith(f'{work_dir} is in use by another run '
                                      f'(host {socket.gethostname()}, PID '
                                      f'{first.pid}, started 20')
            assert 'choose another --work-dir' in message
        assert _snapshot(work_dir) == before
    finally:
        first.send_signal(signal.SIGKILL)
        assert _wait_for_exit(first) == -signal.SIGKILL
    # The lock file still names the killed holder; it blocks nothing.
    assert load(work_dir / 'experiment.lock')['pid'] == first.pid
    line = _resume(reference, work_dir)
    assert line.endswith(
        f'Step 1: resuming from {work_dir / "step_1" / "iter_2.pth"}.')
    assert _metrics(work_dir) == reference['metrics']


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_two_experiments_share_one_step0_store(configs, embedded_voc,
                                               tmp_path):
    """FT and L'_D share M_0; started together, it is trained once."""
    store = tmp_path / 'store'
    ready, go = tmp_path / 'ready', tmp_path / 'go'
    opts = dict(max_step=0, iters_per_class=1)
    waiter = None
    trainer = _start(
        tmp_path / 'ft.log',
        configs / 'ft.py',
        tmp_path / 'ft',
        embedded_voc,
        store,
        fault=dict(
            type='PauseHook',
            step_dir='step_0',
            at_iter=1,
            ready_file=str(ready),
            go_file=str(go)),
        **opts)
    try:
        _wait_for_file(ready, trainer)  # ft holds the entry, training M_0
        waiter = _start(tmp_path / 'ld.log', configs / 'ld.py',
                        tmp_path / 'ld', embedded_voc, store, **opts)
        line = _wait_for_line(waiter, 'Waiting for M_0')
        assert f'trains it (host {socket.gethostname()}, PID ' \
               f'{trainer.pid}, started ' in line, _tail(waiter.log_file)
        go.write_text('')
        assert _wait_for_exit(trainer) == 0, _tail(trainer.log_file)
        assert _wait_for_exit(waiter) == 0, _tail(waiter.log_file)
    finally:
        for proc in (trainer, waiter):
            if proc is not None and proc.poll() is None:
                proc.kill()
    ft = load(tmp_path / 'ft' / 'step_0' / 'step_done.json')
    ld = load(tmp_path / 'ld' / 'step_0' / 'step_done.json')
    assert 'reused' not in ft and ld['reused'] is True
    assert not any(
        f.startswith('iter_') for f in os.listdir(tmp_path / 'ld' / 'step_0'))
    entries = sorted(os.listdir(store))
    assert len(entries) == 2 and entries[1] == entries[0] + '.lock'
    assert sorted(os.listdir(store / entries[0])) == [
        'M0.pth', 'M0.pth.sha256', 'source.json'
    ]
    assert ld['checkpoint'] == str(store / entries[0] / 'M0.pth')
    assert _sha(ld['checkpoint']) == _sha(ft['checkpoint'])
    assert _metrics(tmp_path / 'ft') == _metrics(tmp_path / 'ld')


def test_store_wait_times_out_and_keeps_one_entry(tmp_path, monkeypatch):
    logs = []
    monkeypatch.setattr(step0_store_module, 'print_log',
                        lambda msg, **kwargs: logs.append(msg))
    store = Step0Store(str(tmp_path / 'store'))
    source = dict(model='m', seed=0)
    ckpts = []
    for i in range(2):  # two M_0s that tell apart
        ckpts.append(tmp_path / f'm0_{i}.pth')
        torch.save(dict(state_dict=dict(w=torch.full((4, ), float(i)))),
                   ckpts[-1])
    with store.reserve(source, timeout=0) as first:  # another trainer
        assert first is None and logs == []
        started = time.monotonic()
        with store.reserve(source, timeout=0.3, poll=0.05) as second:
            assert second is None  # gave up waiting: train its own
        assert time.monotonic() - started >= 0.3
        holder = f'host {socket.gethostname()}, PID {os.getpid()}, started '
        assert logs[0].startswith('Waiting for M_0 of ')
        assert holder in logs[0]
        assert logs[1].startswith('No M_0 in ') and holder in logs[1]
        assert logs[1].endswith('training M_0 here (the store keeps one '
                                'complete entry).')
        store.publish(source, str(ckpts[1]))  # both publish
        stored = store.publish(source, str(ckpts[0]))
    assert sorted(os.listdir(osp.dirname(stored))) == [
        'M0.pth', 'M0.pth.sha256', 'source.json'
    ]
    assert torch.load(stored)['state_dict']['w'].tolist() == [0.0] * 4
    with store.reserve(source, timeout=0) as third:
        assert third == stored and len(logs) == 2  # no wait
    # A holder that ended without publishing hands over the entry.
    other = dict(model='other')
    with store.reserve(other, timeout=0) as gone:
        assert gone is None
    with store.reserve(other, timeout=0) as mine:
        assert mine is None and len(logs) == 2


def test_unwritable_store_fails_before_training(tmp_path):
    (tmp_path / 'file').write_text('')
    store = Step0Store(str(tmp_path / 'file' / 'store'))
    with pytest.raises(RuntimeError) as error:
        with store.reserve(dict(model='m')):
            pass
    assert str(error.value) == (
        f'The step-0 store {tmp_path / "file" / "store"} is not writable '
        '(NotADirectoryError: Not a directory); set step0_store to a '
        'writable folder. Nothing was trained.')


def test_fallback_is_the_highest_loadable_iteration(tmp_path):
    for it in (2, 9, 10):
        torch.save(dict(iter=it), tmp_path / f'iter_{it}.pth')
    (tmp_path / 'iter_11.pth').write_bytes(b'PK\x03\x04 truncated')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_12.pth'))
    point = find_resume_checkpoint(str(tmp_path))
    assert point == (str(tmp_path / 'iter_10.pth'),
                     f'last_checkpoint names {tmp_path / "iter_12.pth"}, '
                     'which is missing')
    os.remove(tmp_path / 'last_checkpoint')
    assert find_resume_checkpoint(str(tmp_path)) == (str(
        tmp_path / 'iter_10.pth'), f'{tmp_path} has no last_checkpoint')


def test_unwritable_work_dir_fails_before_training(reference, tmp_path,
                                                   monkeypatch):
    not_a_dir = tmp_path / 'file'
    not_a_dir.write_text('')
    with pytest.raises(RuntimeError) as error:
        IncrementalExperiment(reference['cfg'], str(not_a_dir / 'd')).run()
    assert str(error.value) == (
        f'The work dir {not_a_dir / "d"} is not writable (NotADirectoryError:'
        ' Not a directory); choose another --work-dir, or free space / grant'
        ' write access there. Nothing was trained.')

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', full_disk)
    with pytest.raises(
            RuntimeError,
            match=r'\(OSError: No space left on '
            r'device\); choose another --work-dir'):
        IncrementalExperiment(reference['cfg'], str(tmp_path / 'd')).run()
    assert os.listdir(tmp_path / 'd') == []  # no lock, no step_0


@pytest.mark.parametrize('failing', [1, 2, 3, 4, 5])
def test_failed_write_keeps_previous_files(reference, tmp_path, monkeypatch,
                                           failing):
    """A full disk at the n-th file of summary.json, the plots, report.md
    and metrics.csv: every file keeps its previous version, no temporary
    file is left."""
    cfg, full = reference['cfg'], reference['summary']
    task_steps = full['steps']
    task = experiment_task(cfg)
    work_dir = str(tmp_path)
    write_report(work_dir, write_summary(work_dir, cfg, task, task_steps[:1]))
    before = {
        f: open(osp.join(work_dir, f), 'rb').read()
        for f in os.listdir(work_dir)
    }
    assert sorted(before) == [
        'iou_per_class.png', 'metrics.csv', 'miou_per_step.png', 'report.md',
        'summary.json'
    ]
    replace, calls = atomic_io.replace_file, []

    def replace_or_fail(src, dst):
        calls.append(osp.basename(dst))
        if len(calls) == failing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        replace(src, dst)

    monkeypatch.setattr(atomic_io, 'replace_file', replace_or_fail)
    # One line naming the file and the free space (no OSError traceback).
    with pytest.raises(DiskFull, match=r'No space left to write .* MiB free'):
        write_report(work_dir, write_summary(work_dir, cfg, task, task_steps))
    assert calls == [
        'summary.json', 'miou_per_step.png', 'iou_per_class.png', 'report.md',
        'metrics.csv'
    ][:failing]
    after = {
        f: open(osp.join(work_dir, f), 'rb').read()
        for f in os.listdir(work_dir)
    }
    assert sorted(after) == sorted(before)
    written = calls[:-1]
    for name, content in before.items():
        assert (after[name] == content) == (name not in written), name
    assert json.loads(after['summary.json'])['steps'] == (
        task_steps if 'summary.json' in written else task_steps[:1])


@pytest.mark.parametrize('sig', ['SIGTERM', 'SIGINT'])
def test_preemption_signal_saves_the_current_iteration(
        reference, embedded_voc, tmp_path, sig):
    """A real signal mid-step (iteration 3 of 4; checkpoints every 2): the
    child saves iter_3.pth, says so in one line and exits 75; --resume
    continues from iteration 3 to the metrics of an uninterrupted run."""
    work_dir = tmp_path / 'd'
    step1 = work_dir / 'step_1'
    ready, go = tmp_path / 'ready', tmp_path / 'go'
    child = _start(
        tmp_path / 'child.log',
        reference['config'],
        work_dir,
        embedded_voc,
        reference['store'],
        fault=dict(
            type='PauseHook',
            step_dir='step_1',
            at_iter=3,
            ready_file=str(ready),
            go_file=str(go)))
    _wait_for_file(ready, child)
    os.kill(child.pid, getattr(signal, sig))
    go.write_text('')
    assert _wait_for_exit(child) == PREEMPTED_EXIT_CODE, _tail(child.log_file)
    out = _tail(child.log_file, 20000)
    assert 'Traceback' not in out and 'KeyboardInterrupt' not in out, out
    line = (f'{sig} received: step 1 stopped at iteration 3 of 4 (saved '
            f'{step1 / "iter_3.pth"}); run again with --resume to continue '
            'from there.')
    assert f'train_incremental.py: error: {line}' in out, out
    assert (step1 / 'last_checkpoint').read_text() == str(step1 / 'iter_3.pth')
    assert is_loadable(str(step1 / 'iter_3.pth'))
    assert not (step1 / 'step_done.json').exists()

    resumed = _resume(reference, work_dir)
    assert resumed.endswith(f'Step 1: resuming from {step1 / "iter_3.pth"}.')
    assert _metrics(work_dir) == reference['metrics']


def test_divergence_stops_before_anything_is_published(configs, embedded_voc,
                                                       tmp_path):
    """lr_step0=1e6: one line from the CLI (step, iteration, term, lr),
    exit 1; no M_0 in the store, no summary, no step_done."""
    store = tmp_path / 'store'
    work_dir = tmp_path / 'd'
    cmd = _experiment_cmd(configs / 'ft.py', work_dir, embedded_voc,
                          str(store), lr_step0=1e6)
    proc = subprocess.run(
        cmd, env=_env(), capture_output=True, text=True, timeout=WAIT_S)
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-3000:]
    errors = [
        ln for ln in proc.stderr.splitlines()
        if ln.startswith('train_incremental.py: error:')
    ]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr
    assert 'Step 0 diverged: ' in errors[0]
    assert ' is nan at iteration ' in errors[0] or \
        ' is inf at iteration ' in errors[0]
    assert re.search(r'Likely cause: lr [0-9.e+]+ too high \(lower lr_step0',
                     errors[0])
    assert not (work_dir / 'summary.json').exists()
    assert not (work_dir / 'step_0' / 'step_done.json').exists()
    entries = os.listdir(store) if store.exists() else []
    assert not any(osp.isfile(store / e / 'M0.pth') for e in entries)
    # Every checkpoint it left is finite (the hook refuses the others).
    for name in os.listdir(work_dir / 'step_0'):
        if name.endswith('.pth'):
            state = torch.load(work_dir / 'step_0' / name,
                               map_location='cpu')['state_dict']
            assert all(torch.isfinite(v).all() for v in state.values()
                       if v.is_floating_point())
