"""EF under DDP: 2 CPU processes (gloo), no find_unused_parameters."""
import gc
import socket
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.logging import MMLogger
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
from mmseg_incremental.engine import FreezeEncoderHook
from test_models.utils import (distill_cfg, make_batch, make_teacher,
                               state_copy, toy_model_cfg)

WORLD_SIZE = 2
C_OLD, C_NEW = 3, 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _gathered(tensor: torch.Tensor) -> list:
    out = [torch.empty_like(tensor) for _ in range(WORLD_SIZE)]
    dist.all_gather(out, tensor.contiguous())
    return out


def _train(runner, hook, steps, rank):
    """What mmengine's IterBasedTrainLoop does around each iteration."""
    ddp = runner.model
    # Every parameter, frozen ones too: SGD must skip those without grad.
    optim = OptimWrapper(
        torch.optim.SGD(
            ddp.parameters(), lr=0.2, momentum=0.9, weight_decay=0.1))
    for step in range(steps):
        ddp.train()
        hook.before_train_iter(runner, step)
        # Different data on each rank: only DDP's all-reduce keeps the
        # trainable weights in sync.
        ddp.train_step(make_batch(C_NEW, seed=100 * rank + step), optim)


def _check(rank: int, teacher_ckpt: str) -> None:
    logger = MMLogger.get_instance(f'ddp_test_{rank}', log_level='ERROR')
    torch.manual_seed(rank)  # DDP must broadcast rank 0's head
    cfg = distill_cfg(
        teacher_ckpt,
        C_NEW,
        freeze_encoder=True,
        distill_output=dict(pixel_mask='old'))
    model = MODELS.build(cfg)
    model.init_weights()
    encoder_before = state_copy(model.backbone)
    teacher_before = state_copy(model.teacher)
    ddp = MMDistributedDataParallel(
        module=model,
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=False)
    hook = FreezeEncoderHook()
    runner = SimpleNamespace(model=ddp, logger=logger)
    hook.before_train(runner)  # frozen at construction: accepted
    _train(runner, hook, 3, rank)
    hook.after_train(runner)  # verifies the checksum
    for key, value in state_copy(model.backbone).items():
        assert torch.equal(value, encoder_before[key]), key
    for key, value in state_copy(model.teacher).items():
        assert torch.equal(value, teacher_before[key]), key
    head = torch.cat(
        [p.detach().flatten() for p in model.decode_head.parameters()])
    heads = _gathered(head)
    assert torch.equal(heads[0], heads[1])
    encoders = _gathered(
        torch.cat([v.float().flatten() for v in encoder_before.values()]))
    assert torch.equal(encoders[0], encoders[1])

    # A stock EncoderDecoder wrapped before the hook: a clear error.
    stock = MODELS.build(toy_model_cfg(C_NEW))
    stock_ddp = MMDistributedDataParallel(
        module=stock, device_ids=None, find_unused_parameters=False)
    try:
        hook.before_train(SimpleNamespace(model=stock_ddp, logger=logger))
    except RuntimeError as err:
        assert 'model.freeze_encoder=True' in str(err)
        assert 'find_unused_parameters=True' in str(err)
    else:
        raise AssertionError('FreezeEncoderHook accepted an unfrozen '
                             'encoder under DDP')
    # ... which find_unused_parameters=True makes workable.
    stock = MODELS.build(toy_model_cfg(C_NEW))
    stock_ddp = MMDistributedDataParallel(
        module=stock,
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=True)
    hook = FreezeEncoderHook()
    runner = SimpleNamespace(model=stock_ddp, logger=logger)
    hook.before_train(runner)
    before = state_copy(stock.backbone)
    _train(runner, hook, 2, rank)
    hook.after_train(runner)
    for key, value in state_copy(stock.backbone).items():
        assert torch.equal(value, before[key]), key


def _worker(rank: int, port: int, teacher_ckpt: str) -> None:
    register_all_modules(init_default_scope=True)  # as tests/conftest.py
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=timedelta(seconds=60))
    _check(rank, teacher_ckpt)
    # The DDP reducers (locals of _check) are gone: leave together.
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason='needs torch.distributed with gloo')
def test_ef_under_ddp(tmp_path):
    teacher_ckpt = str(tmp_path / 'step_0.pth')
    make_teacher(teacher_ckpt, C_OLD)
    context = mp.spawn(
        _worker,
        args=(_free_port(), teacher_ckpt),
        nprocs=WORLD_SIZE,
        join=False)
    deadline = time.monotonic() + 180
    while not context.join(timeout=2):  # raises if a worker failed
        if time.monotonic() > deadline:
            for process in context.processes:
                process.terminate()
            pytest.fail('the DDP workers did not finish within 180 s')
