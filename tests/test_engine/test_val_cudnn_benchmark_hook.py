"""ValCudnnBenchmarkHook: no cuDNN benchmarking while validating or testing,
benchmark mode given back to training; one per step config."""
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.testing.runner_test_case import ToyDataset, ToyMetric, ToyModel

import mmseg_incremental  # noqa: F401
from mmseg.registry import HOOKS
from mmseg_incremental.engine.hooks import ValCudnnBenchmarkHook
from mmseg_incremental.experiment import build_step_config, list_steps

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'embedded', 'bench_15-1_ld.py')


@pytest.fixture(autouse=True)
def restore_state():
    """Give back the cuDNN flag and the instances Runners make current."""
    flag = torch.backends.cudnn.benchmark
    saved = {c: c._instance_dict.copy() for c in (DefaultScope, MessageHub)}
    yield
    torch.backends.cudnn.benchmark = flag
    for cls, instances in saved.items():
        cls._instance_dict.clear()
        cls._instance_dict.update(instances)


def test_flag_set_inside_and_restored_after():
    hook = ValCudnnBenchmarkHook()
    torch.backends.cudnn.benchmark = True
    hook.before_val(None)
    assert torch.backends.cudnn.benchmark is False
    hook.after_val(None)
    assert torch.backends.cudnn.benchmark is True
    hook.before_test(None)
    assert torch.backends.cudnn.benchmark is False
    hook.after_test(None)
    assert torch.backends.cudnn.benchmark is True
    # Nested: a test inside a validation; only the outermost restores.
    hook.before_val(None)
    hook.before_test(None)
    hook.after_test(None)
    assert torch.backends.cudnn.benchmark is False
    hook.after_val(None)
    assert torch.backends.cudnn.benchmark is True
    # An after_* with nothing saved changes nothing.
    torch.backends.cudnn.benchmark = False
    hook.after_val(None)
    hook.after_test(None)
    assert torch.backends.cudnn.benchmark is False
    # benchmark=True turns it on while validating, and off again after.
    on = ValCudnnBenchmarkHook(benchmark=True)
    on.before_val(None)
    assert torch.backends.cudnn.benchmark is True
    on.after_val(None)
    assert torch.backends.cudnn.benchmark is False


class _FlagRecorder(Hook):
    """Records ``(phase, cudnn.benchmark)`` at every iteration."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.seen = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self.seen.append(('train', torch.backends.cudnn.benchmark))

    def after_val_iter(self,
                       runner,
                       batch_idx,
                       data_batch=None,
                       outputs=None) -> None:
        self.seen.append(('val', torch.backends.cudnn.benchmark))

    def after_test_iter(self,
                        runner,
                        batch_idx,
                        data_batch=None,
                        outputs=None) -> None:
        self.seen.append(('test', torch.backends.cudnn.benchmark))


def test_real_runner_validates_without_benchmark(tmp_path):
    recorder = _FlagRecorder()
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=4,
        num_workers=0)
    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            loader, sampler=dict(type='InfiniteSampler', shuffle=False)),
        val_dataloader=loader,
        test_dataloader=loader,
        val_evaluator=[ToyMetric()],
        test_evaluator=[ToyMetric()],
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=2),
        val_cfg=dict(),
        test_cfg=dict(),
        # mmseg's default runtime: benchmark mode set at the Runner's start.
        env_cfg=dict(cudnn_benchmark=True),
        custom_hooks=[dict(type='ValCudnnBenchmarkHook'), recorder],
        default_hooks=dict(checkpoint=None),
        default_scope='mmseg',
        experiment_name=f'val_cudnn_{uuid.uuid4().hex}')
    assert torch.backends.cudnn.benchmark is True
    runner.train()  # two iterations, then a validation (3 batches)
    assert torch.backends.cudnn.benchmark is True
    runner.val()
    assert torch.backends.cudnn.benchmark is True
    runner.test()
    assert torch.backends.cudnn.benchmark is True
    assert recorder.seen == [('train', True)] * 2 + [('val', False)] * 6 + \
        [('test', False)] * 3


def _hooks(step_cfg):
    return [
        h for h in step_cfg.get('custom_hooks', [])
        if h['type'] == 'ValCudnnBenchmarkHook'
    ]


def test_plan_adds_one_per_step_and_keeps_users():
    cfg = Config.fromfile(CONFIG)
    steps = list_steps(cfg)
    assert steps == [0, 1, 2, 3, 4, 5]
    for step in steps:
        step_cfg = build_step_config(cfg, step, 'w',
                                     None if step == 0 else 'prev.pth')
        assert _hooks(step_cfg) == [dict(type='ValCudnnBenchmarkHook')]
        assert HOOKS.build(_hooks(step_cfg)[0]).benchmark is False
    # A user's own (benchmark kept on) is the step's only one, as given.
    cfg.custom_hooks = [
        dict(type='ValCudnnBenchmarkHook', benchmark=True),
        dict(type='EMAHook')
    ]
    for step in (0, 1):
        step_cfg = build_step_config(cfg, step, 'w',
                                     None if step == 0 else 'prev.pth')
        assert _hooks(step_cfg) == [
            dict(type='ValCudnnBenchmarkHook', benchmark=True)
        ]
        assert [h['type'] for h in step_cfg.custom_hooks][:2] == \
            ['ValCudnnBenchmarkHook', 'EMAHook']
