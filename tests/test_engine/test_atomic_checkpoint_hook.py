"""AtomicCheckpointHook: at every instant a kill could strike, the folder
resumes; the files and the resume state equal mmengine's hook's."""
import glob
import os
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.testing.runner_test_case import ToyDataset, ToyModel

import mmseg_incremental  # noqa: F401
from mmseg.registry import HOOKS
from mmseg_incremental.engine import AtomicCheckpointHook
from mmseg_incremental.experiment.resume import is_loadable

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', 'il', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'embedded', '*.py')))


@pytest.fixture(autouse=True)
def restore_global_instances():
    """Runners make themselves the current scope / message hub."""
    saved = {c: c._instance_dict.copy() for c in (DefaultScope, MessageHub)}
    yield
    for cls, instances in saved.items():
        cls._instance_dict.clear()
        cls._instance_dict.update(instances)


def _train(work_dir: str,
           hook: str,
           max_keep_ckpts: int,
           max_iters: int = 4) -> Runner:
    runner = Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=False),
            batch_size=3,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type=hook,
                interval=1,
                by_epoch=False,
                max_keep_ckpts=max_keep_ckpts)),
        randomness=dict(seed=0),
        default_scope='mmseg',
        experiment_name=f'atomic_ckpt_{uuid.uuid4().hex}')
    runner.train()
    return runner


class KillPoints:
    """Checks the folder at every instant a kill could leave it in: before
    and after every file write, rename and removal.

    A state is broken when ``last_checkpoint`` names a file that is missing
    or not loadable, or when a checkpoint is being written under its final
    name (a kill leaves it truncated).
    """

    def __init__(self, work_dir: str, monkeypatch) -> None:
        self.work_dir = work_dir
        self.broken = []
        self.checks = 0
        for owner, name in ((os, 'replace'), (os, 'remove'),
                            (LocalBackend, 'put'), (LocalBackend, 'remove')):
            label = f'{getattr(owner, "__name__", "os")}.{name}'
            monkeypatch.setattr(owner, name,
                                self._wrap(getattr(owner, name), label))

    def _check(self, what: str) -> None:
        self.checks += 1
        last = osp.join(self.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                named = f.read().strip()
            if not is_loadable(named):
                self.broken.append(f'{what}: last_checkpoint -> '
                                   f'{osp.basename(named)}')

    def _wrap(self, func, name):

        def wrapped(*args, **kwargs):
            target = str(args[-1])
            if name.endswith('put') and target.endswith('.pth'):
                self.broken.append(f'{osp.basename(target)} written in place')
            self._check(f'before {name} {osp.basename(target)}')
            out = func(*args, **kwargs)
            self._check(f'after {name} {osp.basename(target)}')
            return out

        return wrapped


@pytest.mark.parametrize('max_keep_ckpts', [1, 2])
def test_every_kill_point_leaves_a_resumable_folder(tmp_path, monkeypatch,
                                                    max_keep_ckpts):
    work_dir = str(tmp_path / 'atomic')
    points = KillPoints(work_dir, monkeypatch)
    _train(work_dir, 'AtomicCheckpointHook', max_keep_ckpts)
    assert points.broken == []
    assert points.checks >= 4 * 4  # tmp put, rename, last_checkpoint, rm


def test_mmengine_hook_has_kill_points_that_break_resume(
        tmp_path, monkeypatch):
    """The same probe finds the faults of issue 14 in mmengine's hook."""
    work_dir = str(tmp_path / 'stock')
    points = KillPoints(work_dir, monkeypatch)
    _train(work_dir, 'CheckpointHook', max_keep_ckpts=1, max_iters=2)
    assert points.broken == [
        'iter_1.pth written in place',
        'after os.remove iter_1.pth: last_checkpoint -> iter_1.pth',
        'after LocalBackend.remove iter_1.pth: last_checkpoint -> iter_1.pth',
        'iter_2.pth written in place',
        'before LocalBackend.put iter_2.pth: last_checkpoint -> iter_1.pth',
        'after LocalBackend.put iter_2.pth: last_checkpoint -> iter_1.pth',
    ]


def test_same_files_and_resume_state_as_mmengine(tmp_path):
    os.makedirs(tmp_path / 'atomic')
    stale = tmp_path / 'atomic' / 'iter_9.pth.tmp'
    stale.write_bytes(b'half a checkpoint')
    (tmp_path / 'atomic' / 'notes.tmp').write_text('not ours')
    _train(str(tmp_path / 'atomic'), 'AtomicCheckpointHook', 2)
    _train(str(tmp_path / 'stock'), 'CheckpointHook', 2)
    for name in ('atomic', 'stock'):
        files = sorted(
            f for f in os.listdir(tmp_path / name)
            if osp.isfile(tmp_path / name /
                          f) and not f.endswith('.py'))  # the runner's config
        expected = ['iter_3.pth', 'iter_4.pth', 'last_checkpoint']
        assert files == expected + (['notes.tmp'] if name == 'atomic' else [])
        with open(tmp_path / name / 'last_checkpoint') as f:
            assert f.read() == str(tmp_path / name / 'iter_4.pth')
    ours = torch.load(tmp_path / 'atomic' / 'iter_4.pth')
    theirs = torch.load(tmp_path / 'stock' / 'iter_4.pth')
    info = ours['message_hub']['runtime_info']
    assert info['keep_ckpt_ids'] == [3, 4]
    assert info['last_ckpt'] == str(tmp_path / 'atomic' / 'iter_4.pth')
    assert theirs['message_hub']['runtime_info']['keep_ckpt_ids'] == [3, 4]
    assert ours['meta']['iter'] == theirs['meta']['iter'] == 4
    for key, value in theirs['state_dict'].items():
        assert torch.equal(ours['state_dict'][key], value), key


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_every_config_builds_the_atomic_hook(path):
    cfg = Config.fromfile(path)
    hook = HOOKS.build(cfg.default_hooks.checkpoint)
    assert type(hook) is AtomicCheckpointHook
    assert hook.by_epoch is False and hook.max_keep_ckpts >= 1


def test_disk_full_at_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    """ENOSPC in the middle of iter_3's write: DiskFull naming the file and
    the free space; iter_2 intact and named; no iter_3.pth.tmp left."""
    import errno
    from mmseg_incremental.utils.errors import DiskFull
    real_put, calls = LocalBackend.put, []

    def half_then_full(backend, obj, filepath):
        calls.append(osp.basename(str(filepath)))
        if str(filepath).endswith('iter_3.pth.tmp'):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_put(backend, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', half_then_full)
    work_dir = str(tmp_path)
    with pytest.raises(DiskFull) as info:
        _train(work_dir, 'AtomicCheckpointHook', max_keep_ckpts=1)
    text = str(info.value)
    assert text.startswith(f'No space left to write '
                           f'{osp.join(work_dir, "iter_3.pth")} (')
    assert ' MiB free on its disk); the previous version is intact' in text
    assert sorted(f for f in os.listdir(work_dir) if 'iter' in f) == \
        ['iter_2.pth']
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_2.pth')


def test_non_finite_parameters_are_never_saved(tmp_path):
    """A parameter turned NaN after iteration 2: iter_3 is refused with
    TrainingDiverged; iter_2 stays the newest checkpoint."""
    from mmengine.hooks import Hook
    from mmseg_incremental.utils.errors import TrainingDiverged

    class Poison(Hook):
        priority = 'VERY_HIGH'

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if runner.iter == 2:  # the third iteration
                with torch.no_grad():
                    next(runner.model.parameters()).fill_(float('nan'))

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=False),
            batch_size=3,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=4),
        default_hooks=dict(
            checkpoint=dict(
                type='AtomicCheckpointHook', interval=1, by_epoch=False)),
        custom_hooks=[Poison()],
        default_scope='mmseg',
        experiment_name=f'atomic_ckpt_{uuid.uuid4().hex}')
    with pytest.raises(TrainingDiverged, match='1 of 4 parameter/buffer '
                       'tensors are not finite at iteration 3; iter_3.pth '
                       'was not saved'):
        runner.train()
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) == \
        ['iter_1.pth', 'iter_2.pth']


def _guard_runner(values):
    """A runner stand-in whose message hub holds one loss per iteration."""
    from types import SimpleNamespace
    hub = MessageHub(f'guard_{uuid.uuid4().hex}')
    runner = SimpleNamespace(
        message_hub=hub, hooks=[], iter=0, max_iters=len(values),
        cfg=dict(experiment_name='step_2'), experiment_name='step_2',
        work_dir='D/step_2',
        optim_wrapper=SimpleNamespace(get_lr=lambda: dict(lr=[0.01])))
    return runner, hub


@pytest.mark.parametrize('skip_limit, stops_at', [(0, 2), (2, 6), (3, None)])
def test_divergence_guard_policies(skip_limit, stops_at):
    """'stop': the first NaN stops; 'skip' (fp16 AMP): up to skip_limit
    NaNs in a row pass, a finite loss resets the count."""
    from mmseg_incremental.engine.hooks import DivergenceGuardHook
    from mmseg_incremental.utils.errors import TrainingDiverged
    losses = [1.0, float('nan'), 2.0, float('nan'), float('nan'),
              float('nan'), 1.5]
    runner, hub = _guard_runner(losses)
    guard = DivergenceGuardHook(skip_limit=skip_limit)
    guard.before_train(runner)
    stopped = None
    for i, loss in enumerate(losses):
        runner.iter = i
        hub.update_scalar('train/loss', loss)
        hub.update_scalar('train/decode.loss_ce', loss)
        try:
            guard.after_train_iter(runner, i)
        except TrainingDiverged as error:
            stopped = i + 1
            assert str(error).startswith(
                f'Step 2 diverged: decode.loss_ce is nan at iteration {i + 1}'
                ' of 7; the step stopped')
            assert 'Likely cause: lr 0.01 too high' in str(error)
            break
    assert stopped == stops_at
