"""FreezeEncoderHook inside mmengine's Runner (one process, CPU)."""
import uuid

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmseg_incremental  # noqa: F401
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg_incremental.engine import FreezeEncoderHook
from test_models.utils import (assert_state_equal, distill_cfg, make_batch,
                               make_teacher, state_copy, toy_model_cfg)

NUM_CLASSES = 4


class ToySegDataset(Dataset):
    """Eight random images with labels, as mmseg's pipeline packs them."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        batch = make_batch(num_classes, batch_size=8, seed=3)
        self.items = list(zip(batch['inputs'], batch['data_samples']))
        self.metainfo = dict()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image, sample = self.items[index]
        return dict(inputs=image, data_samples=sample)


class SnapshotHook(Hook):
    """Copies the model's state when training starts (after init/load)."""

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        model = runner.model
        self.backbone = state_copy(model.backbone)
        self.decode_head = state_copy(model.decode_head)
        if hasattr(model, 'teacher'):
            self.teacher = state_copy(model.teacher)


class TamperHook(Hook):
    """Moves a BN statistic of the frozen encoder behind everyone's back."""

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        runner.model.backbone.bn1.running_mean.add_(1.0)


def _runner(tmp_path, model, hooks, max_iters=4):
    return Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=ToySegDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.2, momentum=0.9,
                           weight_decay=0.1)),
        custom_hooks=hooks,
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=max_iters, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmseg',
        log_level='WARNING',
        experiment_name=f'freeze_{uuid.uuid4().hex}')


@pytest.mark.parametrize('with_hook', [True, False])
def test_hook_freezes_a_stock_encoder_decoder(tmp_path, with_hook):
    snapshot = SnapshotHook()
    hooks = [snapshot
             ] + ([dict(type='FreezeEncoderHook')] if with_hook else [])
    runner = _runner(tmp_path, toy_model_cfg(NUM_CLASSES), hooks)
    assert isinstance(runner.model, EncoderDecoder)
    runner.train()
    model = runner.model
    if with_hook:
        assert_state_equal(state_copy(model.backbone), snapshot.backbone)
        assert all(not p.requires_grad for p in model.backbone.parameters())
    else:  # the control: without the hook the encoder and BN stats move
        now = state_copy(model.backbone)
        assert not torch.equal(now['conv1.weight'],
                               snapshot.backbone['conv1.weight'])
        assert not torch.equal(now['bn1.running_mean'],
                               snapshot.backbone['bn1.running_mean'])
    assert not torch.equal(model.decode_head.aspp[0].weight,
                           snapshot.decode_head['aspp.0.weight'])


def test_hook_verifies_distill_ef_and_checkpoint_has_no_teacher(tmp_path):
    teacher_ckpt = str(tmp_path / 'step_0.pth')
    teacher = make_teacher(teacher_ckpt, NUM_CLASSES - 1)
    snapshot = SnapshotHook()
    cfg = distill_cfg(
        teacher_ckpt,
        NUM_CLASSES,
        freeze_encoder=True,
        distill_output=dict(pixel_mask='old'))
    runner = _runner(tmp_path, cfg, [dict(type='FreezeEncoderHook'), snapshot])
    runner.train()
    model = runner.model
    # The Runner's init_weights() kept the teacher's encoder, EF kept it.
    assert_state_equal(snapshot.backbone, state_copy(teacher.backbone))
    assert_state_equal(state_copy(model.backbone), snapshot.backbone)
    assert_state_equal(state_copy(model.teacher), state_copy(teacher))
    assert not torch.equal(model.decode_head.aspp[0].weight,
                           snapshot.decode_head['aspp.0.weight'])
    # mmengine's checkpoint: student only, loads into a stock model.
    saved = torch.load(
        str(tmp_path / 'iter_4.pth'), weights_only=False)['state_dict']
    assert all(k.startswith(('backbone.', 'decode_head.')) for k in saved)
    plain = MODELS.build(toy_model_cfg(NUM_CLASSES))
    plain.load_state_dict(saved, strict=True)
    assert_state_equal(state_copy(plain), state_copy(model))


def test_hook_refuses_an_ef_encoder_that_is_not_the_teachers(tmp_path):
    """A checkpoint loaded over the student (e.g. a leaked load_from of
    another model) makes EF freeze the wrong encoder: the guard raises
    before the first iteration."""
    teacher_ckpt = str(tmp_path / 'step_0.pth')
    make_teacher(teacher_ckpt, NUM_CLASSES - 1)
    other = str(tmp_path / 'other.pth')
    model = make_teacher(other, NUM_CLASSES, seed=9)  # another M_0
    torch.save({'state_dict': model.state_dict()}, other)
    cfg = distill_cfg(
        teacher_ckpt, NUM_CLASSES, freeze_encoder=True, distill_output=dict())
    runner = _runner(tmp_path, cfg, [dict(type='FreezeEncoderHook')])
    runner._load_from = other
    with pytest.raises(RuntimeError, match="EF must keep M_{k-1}'s encoder"):
        runner.train()


def test_hook_raises_when_frozen_weights_move(tmp_path):
    runner = _runner(
        tmp_path,
        toy_model_cfg(NUM_CLASSES),
        [dict(type='FreezeEncoderHook'),
         TamperHook()],
        max_iters=2)
    with pytest.raises(RuntimeError, match='backbone.bn1.running_mean'):
        runner.train()


def test_hook_refuses_distill_without_freeze_encoder(tmp_path):
    teacher_ckpt = str(tmp_path / 'step_0.pth')
    make_teacher(teacher_ckpt, NUM_CLASSES - 1)
    runner = _runner(tmp_path, distill_cfg(teacher_ckpt, NUM_CLASSES),
                     [dict(type='FreezeEncoderHook')])
    with pytest.raises(ValueError, match='model.freeze_encoder=True'):
        runner.train()


def test_hook_args():
    assert FreezeEncoderHook().module_names == ('backbone', 'neck')
    with pytest.raises(ValueError, match='module_names'):
        FreezeEncoderHook(module_names='backbone')
