"""A training loop without a host sync per iteration: the deferred
``runtime_info`` hook records what mmengine's records, one iteration late
except where it is read; batches are copied non-blocking on a GPU."""
import json
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg_incremental.engine import (DeferredRuntimeInfoHook,
                                      NonBlockingCopyHook)
from mmseg_incremental.planning import build_step_config
from test_engine.test_freeze_encoder_hook import ToySegDataset
from test_models.utils import toy_model_cfg

MAX_ITERS = 11


class HubProbeHook(Hook):
    """Right after the runtime-info hook: how many ``train/loss`` values
    the message hub holds after each iteration."""

    priority = 'VERY_HIGH'  # registered after runtime_info: runs after it

    def __init__(self) -> None:
        self.counts = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        buffer = runner.message_hub.log_scalars.get('train/loss')
        self.counts.append(0 if buffer is None else len(buffer.data[0]))


def _train(tmp_path, runtime_info: str):
    torch.manual_seed(0)
    probe = HubProbeHook()
    work_dir = osp.join(str(tmp_path), runtime_info)
    runner = Runner(
        model=MODELS.build(toy_model_cfg(4)),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToySegDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        custom_hooks=[probe],
        default_hooks=dict(
            runtime_info=dict(type=runtime_info),
            checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False),
            logger=dict(type='LoggerHook', interval=3)),
        default_scope='mmseg',
        log_level='WARNING',
        randomness=dict(seed=0),
        experiment_name=f'deferred_{uuid.uuid4().hex}')
    runner.train()
    hub = runner.message_hub
    history = {
        key: buffer.data[0].tolist()
        for key, buffer in hub.log_scalars.items()
        if key.startswith('train/') and key not in ('train/time',
                                                    'train/data_time')
    }
    logs = []
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        for line in f:
            row = json.loads(line)
            logs.append({
                k: v
                for k, v in row.items() if k not in ('time', 'data_time')
            })
    ckpt = torch.load(
        osp.join(work_dir, 'iter_8.pth'),
        map_location='cpu',
        weights_only=False)
    saved = ckpt['message_hub']['log_scalars']['train/loss'].data[0].tolist()
    return probe.counts, history, logs, saved


def test_same_messages_logs_and_checkpoints_as_mmengine(tmp_path):
    counts, history, logs, saved = _train(tmp_path, 'RuntimeInfoHook')
    d_counts, d_history, d_logs, d_saved = _train(tmp_path,
                                                  'DeferredRuntimeInfoHook')
    assert list(history) == list(d_history)  # the keys' order too
    assert history == d_history
    assert len(history['train/loss']) == MAX_ITERS
    assert logs == d_logs and len(logs) == 3  # iterations 3, 6, 9
    assert saved == d_saved and len(saved) == 8
    # mmengine's hook records every iteration at once; the deferred one is
    # an iteration behind except at the first, the logger's (3, 6, 9), the
    # checkpoints' (4, 8) and the last iteration.
    assert counts == list(range(1, MAX_ITERS + 1))
    read = {1, 3, 4, 6, 8, 9, 11}
    assert d_counts == [
        i if i in read else i - 1 for i in range(1, MAX_ITERS + 1)
    ]


def test_the_plan_sets_both_hooks():
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs/il/voc_15-1_ld.py'))
    step = build_step_config(cfg, 1, work_dir='w', teacher_checkpoint='t')
    assert step.default_hooks.runtime_info == dict(
        type='DeferredRuntimeInfoHook')
    assert dict(type='NonBlockingCopyHook') in step.custom_hooks
    # A runtime_info of the user's (None removes it) is kept.
    cfg.default_hooks.runtime_info = None
    step = build_step_config(cfg, 1, work_dir='w', teacher_checkpoint='t')
    assert step.default_hooks.runtime_info is None


class _Runner:

    def __init__(self, model) -> None:
        self.model = model


def test_non_blocking_copy_only_on_a_gpu():
    model = MODELS.build(toy_model_cfg(4))
    hook = NonBlockingCopyHook()
    hook.before_train(_Runner(model))
    assert model.data_preprocessor._non_blocking is False  # CPU: unchanged
    if not torch.cuda.is_available():
        pytest.skip('no GPU here: the CUDA half runs in benchmarks/'
                    'gpu_check.sh')
    model.cuda()
    hook.before_train(_Runner(model))
    assert model.data_preprocessor._non_blocking is True


def test_deferred_values_are_exact_for_every_dtype():
    """Values go through one float64 tensor: float32, bf16 and int64
    scalars arrive as mmengine's .item() gives them, in order."""

    class Hub:

        def __init__(self) -> None:
            self.values = {}

        def update_scalar(self, key, value):
            self.values[key] = value

    class FakeRunner:
        message_hub = Hub()
        iter = 5
        max_iters = 100
        train_dataloader = list(range(1000))

    hook = DeferredRuntimeInfoHook()
    hook._first = False  # a later iteration, no logger or checkpoint
    outputs = dict(
        loss=torch.tensor(0.1234567, dtype=torch.float32),
        extra=0.5,
        acc=torch.tensor(97.5, dtype=torch.bfloat16),
        count=torch.tensor(123456789))
    runner = FakeRunner()
    hook.after_train_iter(runner, 5, outputs=outputs)
    assert runner.message_hub.values == {}  # deferred
    hook.flush(runner)
    assert list(runner.message_hub.values) == [f'train/{k}' for k in outputs]
    for key, value in outputs.items():
        expected = value.item() if isinstance(value, torch.Tensor) else value
        assert runner.message_hub.values[f'train/{key}'] == expected
