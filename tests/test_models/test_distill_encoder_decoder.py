"""DistillEncoderDecoder: teacher handling, growth, EF, losses, checkpoints."""
import math
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.runner import load_checkpoint

import mmseg_incremental  # noqa: F401
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg_incremental.models import DistillEncoderDecoder, OutputDistillLoss
from test_models.utils import (assert_state_equal, distill_cfg, make_batch,
                               make_teacher, state_copy, toy_model_cfg)

C_OLD, C_NEW = 3, 5


@pytest.fixture
def teacher(tmp_path):
    path = str(tmp_path / 'step_0.pth')
    return path, make_teacher(path, C_OLD)


def _build(path, num_classes=C_NEW, **kwargs):
    return MODELS.build(distill_cfg(path, num_classes, **kwargs))


def _logits(model, batch):
    data = model.data_preprocessor(batch, training=False)
    with torch.no_grad():
        return model._forward(data['inputs'])


def test_teacher_is_loaded_frozen_hidden(teacher):
    path, ref = teacher
    model = _build(path)
    assert isinstance(model, DistillEncoderDecoder)
    assert model.num_old_classes == C_OLD and model.num_classes == C_NEW
    assert type(model.teacher) is EncoderDecoder
    assert model.teacher.num_classes == C_OLD
    assert_state_equal(state_copy(model.teacher), state_copy(ref))
    assert all(not p.requires_grad for p in model.teacher.parameters())
    # Not a submodule: not in state_dict, parameters(), modules().
    keys = model.state_dict().keys()
    assert all(k.startswith(('backbone.', 'decode_head.')) for k in keys)
    assert not any(k.startswith('teacher') for k in keys)
    teacher_params = {id(p) for p in model.teacher.parameters()}
    assert not teacher_params & {id(p) for p in model.parameters()}
    model.train()
    assert model.training and model.decode_head.training
    assert not model.teacher.training
    assert not any(m.training for m in model.teacher.modules())


def test_growth_default_old_logits_equal_teacher(teacher):
    path, ref = teacher
    model = _build(path).eval()
    batch = make_batch(C_NEW)
    expected = _logits(ref, batch)
    assert torch.equal(_logits(model, batch)[:, :C_OLD], expected)
    # Tensors that differ only in dim 0 copy the old rows.
    for key, old in ref.state_dict().items():
        new = model.state_dict()[key]
        if old.dim() == 0 or new.shape == old.shape:
            assert torch.equal(new, old), key
        else:
            assert new.shape[0] == C_NEW and old.shape[0] == C_OLD, key
            assert torch.equal(new[:C_OLD], old), key
    # mmengine's Runner calls init_weights() after construction: the copy
    # survives it and the new rows get the head's N(0, 0.01), zero bias.
    model.init_weights()
    assert torch.equal(_logits(model, batch)[:, :C_OLD], expected)
    for conv in model.decode_head.aspp:
        assert torch.equal(conv.bias[C_OLD:], torch.zeros(C_NEW - C_OLD))
        assert 0 < conv.weight[C_OLD:].abs().max() < 0.1


def test_growth_background_follows_mib(teacher):
    path, ref = teacher
    model = _build(path, new_class_init='background').eval()
    model.init_weights()
    shift = math.log(C_NEW - C_OLD + 1)
    aspp = model.decode_head.aspp
    for i, conv in enumerate(aspp):
        old = ref.decode_head.aspp[i]
        for c in range(C_OLD, C_NEW):
            assert torch.equal(conv.weight[c], old.weight[0])
            assert conv.bias[c].item() == pytest.approx(
                old.bias[0].item() - shift / len(aspp), abs=1e-6)
        assert conv.bias[0].item() == pytest.approx(
            old.bias[0].item() - shift / len(aspp), abs=1e-6)
        assert torch.equal(conv.bias[1:C_OLD], old.bias[1:])
        assert torch.equal(conv.weight[:C_OLD], old.weight)
    # On the logits: background and every new class score
    # z_bg - log(|U|+1), so their probabilities share the old background's.
    batch = make_batch(C_NEW)
    new, old = _logits(model, batch), _logits(ref, batch)
    for c in [0] + list(range(C_OLD, C_NEW)):
        torch.testing.assert_close(new[:, c], old[:, 0] - shift)
    torch.testing.assert_close(new[:, 1:C_OLD], old[:, 1:])
    p_new, p_old = new.softmax(1), old.softmax(1)
    torch.testing.assert_close(p_new[:, 0] + p_new[:, C_OLD:].sum(1), p_old[:,
                                                                            0])
    torch.testing.assert_close(p_new[:, 1:C_OLD], p_old[:, 1:])


def test_growth_of_a_conv_seg_head(tmp_path):
    path = str(tmp_path / 'fcn.pth')
    ref = make_teacher(path, C_OLD, head='FCNHead')
    model = _build(path, head='FCNHead', new_class_init='background').eval()
    weight = model.decode_head.conv_seg.weight
    bias = model.decode_head.conv_seg.bias
    old_w = ref.decode_head.conv_seg.weight
    old_b = ref.decode_head.conv_seg.bias
    assert torch.equal(weight[:C_OLD], old_w)
    assert torch.equal(weight[C_OLD:], old_w[:1].expand(2, -1, -1, -1))
    shift = math.log(3)
    assert bias[C_OLD:].tolist() == pytest.approx(
        [old_b[0].item() - shift] * 2, abs=1e-6)
    assert bias[0].item() == pytest.approx(old_b[0].item() - shift, abs=1e-6)
    batch = make_batch(C_NEW)
    torch.testing.assert_close(
        _logits(model, batch)[:, C_OLD:],
        (_logits(ref, batch)[:, :1] - shift).expand(-1, 2, -1, -1))


def test_loss_values_and_keys(teacher):
    path, ref = teacher
    model = _build(
        path,
        distill_output=dict(pixel_mask='old', loss_weight=2.0),
        distill_feature=dict(type='FeatureDistillLoss', loss_weight=10.0))
    model.train()
    batch = make_batch(C_NEW, seed=4)
    data = model.data_preprocessor(batch, training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {
        'decode.loss_ce', 'decode.acc_seg', 'distill.loss_distill_out',
        'distill.loss_distill_feat'
    }
    # Recompute every term from the two networks by hand.
    inputs = data['inputs']
    label = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])
    s_feats = model.extract_feat(inputs)
    s_logits = model.decode_head(s_feats)
    with torch.no_grad():
        t_feats = ref.extract_feat(inputs)
        t_logits = ref.decode_head(t_feats)
    ce = F.cross_entropy(
        F.interpolate(s_logits, size=label.shape[2:], mode='bilinear'),
        label[:, 0],
        ignore_index=255)
    out = OutputDistillLoss(
        pixel_mask='old', loss_weight=2.0)(s_logits, t_logits, label)
    feat = 10.0 * F.mse_loss(s_feats[1], t_feats[1])
    assert losses['decode.loss_ce'].item() == pytest.approx(
        ce.item(), rel=1e-5)
    assert losses['distill.loss_distill_out'].item() == pytest.approx(
        out.item(), rel=1e-5)
    assert feat.item() > 0  # the student's BN uses batch statistics
    assert losses['distill.loss_distill_feat'].item() == pytest.approx(
        feat.item(), rel=1e-5)


def _sgd(model):
    # Every parameter of the model, frozen ones included: SGD must skip
    # those without a gradient despite momentum and weight decay.
    return OptimWrapper(
        torch.optim.SGD(
            model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1))


def test_gradients_without_ef(teacher):
    path, _ = teacher
    model = _build(
        path, distill_output=dict(), distill_feature=dict(loss_weight=5.0))
    model.train()
    teacher_before = state_copy(model.teacher)
    batch = make_batch(C_NEW)
    data = model.data_preprocessor(batch, training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.decode_head.parameters())
    optim = _sgd(model)
    for step in range(3):
        model.train_step(make_batch(C_NEW, seed=10 + step), optim)
    assert_state_equal(state_copy(model.teacher), teacher_before)
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not torch.equal(model.backbone.conv1.weight,
                           teacher_before['backbone.conv1.weight'])


def test_ef_freezes_encoder_and_shares_it(teacher):
    path, _ = teacher
    model = _build(
        path, freeze_encoder=True, distill_output=dict(variant='mib'))
    assert all(not p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training and not model.teacher.training
    assert not any(m.training for m in model.backbone.modules())
    assert model.decode_head.training
    encoder_before = state_copy(model.backbone)
    teacher_before = state_copy(model.teacher)
    head_before = state_copy(model.decode_head)

    calls = []
    teacher_backbone = model.teacher.backbone
    original = teacher_backbone.forward
    with mock.patch.object(
            teacher_backbone,
            'forward',
            side_effect=lambda x: calls.append(1) or original(x)):
        batch = make_batch(C_NEW)
        data = model.data_preprocessor(batch, training=True)
        losses = model.loss(data['inputs'], data['data_samples'])
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        assert calls == []  # one encoder pass feeds both heads
        assert all(p.grad is None for p in model.backbone.parameters())
        assert all(p.grad is None for p in model.teacher.parameters())
        assert all(p.grad is not None for p in model.decode_head.parameters())
        optim = _sgd(model)
        for step in range(4):
            log = model.train_step(make_batch(C_NEW, seed=20 + step), optim)
            assert log['distill.loss_distill_out'] > 0
        assert calls == []
    # Frozen encoder bit-identical, BN statistics too; the teacher as well.
    assert_state_equal(state_copy(model.backbone), encoder_before)
    assert_state_equal(state_copy(model.teacher), teacher_before)
    assert not torch.equal(model.decode_head.aspp[0].weight,
                           head_before['aspp.0.weight'])


def test_ef_does_not_share_a_different_encoder(teacher):
    path, _ = teacher
    model = _build(path, freeze_encoder=True, distill_output=dict())
    state = model.state_dict()
    state['backbone.conv1.weight'] = state['backbone.conv1.weight'] + 1
    model.load_state_dict(state, strict=True)
    assert _teacher_encoder_calls(model, make_batch(C_NEW)) == 1


def _teacher_encoder_calls(model, batch) -> int:
    """How often one loss() runs the teacher's own encoder."""
    calls = []
    backbone = model.teacher.backbone
    original = backbone.forward
    with mock.patch.object(
            backbone,
            'forward',
            side_effect=lambda x: calls.append(1) or original(x)):
        data = model.data_preprocessor(batch, training=True)
        model.loss(data['inputs'], data['data_samples'])
    return len(calls)


@pytest.mark.parametrize(
    'write',
    ['submodule_load', 'in_place', 'data_swap', 'teacher_side', 'replaced'])
def test_ef_sharing_cannot_go_stale(teacher, write):
    """Writes that bypass the top-level load_state_dict (a submodule's
    load, a hook's in-place edit, a .data swap, a new Parameter object, an
    edit of the teacher)
    are seen at the next batch: the teacher then runs its own encoder and
    L'_D uses the teacher's true logits."""
    path, _ = teacher
    model = _build(path, freeze_encoder=True, distill_output=dict())
    batch = make_batch(C_NEW, seed=5)
    assert _teacher_encoder_calls(model, batch) == 0  # shared
    with torch.no_grad():
        if write == 'submodule_load':
            state = model.backbone.state_dict()
            state['conv1.weight'] = state['conv1.weight'] * 2
            model.backbone.load_state_dict(state)
        elif write == 'in_place':
            model.backbone.bn1.running_mean.add_(0.5)
        elif write == 'data_swap':
            model.backbone.conv2.weight.data = \
                model.backbone.conv2.weight.data + 1
        elif write == 'replaced':  # a new Parameter object
            model.backbone.conv2.weight = torch.nn.Parameter(
                model.backbone.conv2.weight + 1, requires_grad=False)
        else:
            model.teacher.backbone.conv1.weight.mul_(0.5)
    assert _teacher_encoder_calls(model, batch) == 1
    # The value: L'_D against the teacher's own logits, not the student's.
    data = model.data_preprocessor(batch, training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        student_logits = model.decode_head.forward(feats)
        teacher_logits = model.teacher.decode_head.forward(
            model.teacher.extract_feat(data['inputs']))
    label = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])
    expected = model.distill_output(student_logits, teacher_logits, label)
    assert losses['distill.loss_distill_out'].item() == pytest.approx(
        expected.item(), rel=1e-6)
    # Restoring equality is noticed too: sharing resumes.
    with torch.no_grad():
        model.backbone.load_state_dict(model.teacher.backbone.state_dict())
    assert _teacher_encoder_calls(model, batch) == 0


def test_distill_output_takes_the_heads_ignore_index(teacher):
    path, _ = teacher
    cfg = distill_cfg(path, C_NEW, distill_output=dict(pixel_mask='old'))
    cfg['decode_head']['ignore_index'] = 2
    cfg['decode_head']['align_corners'] = True
    model = MODELS.build(cfg)
    assert model.distill_output.ignore_index == 2
    assert model.distill_output.align_corners is True


def test_fixed_classifier_copies_the_teacher_and_masks_by_c_old(tmp_path):
    """The authors' fixed head: teacher and student both have C_NEW outputs
    from the start; nothing grows, the student is M_{k-1} exactly, and
    L'_D sums over every teacher output on pixels labelled < C_old."""
    path = str(tmp_path / 'fixed.pth')
    make_teacher(path, C_NEW)
    model = _build(
        path, num_old_classes=C_OLD, distill_output=dict(pixel_mask='old'))
    assert (model.num_old_classes, model.teacher_classes) == (C_OLD, C_NEW)
    assert_state_equal(
        state_copy(model.backbone), state_copy(model.teacher.backbone))
    assert_state_equal(
        state_copy(model.decode_head), state_copy(model.teacher.decode_head))
    model.init_weights()  # the Runner's init keeps the copy
    assert_state_equal(
        state_copy(model.decode_head), state_copy(model.teacher.decode_head))
    label = torch.full((1, 16, 16), C_OLD)  # a new class everywhere...
    label[:, :4] = 1  # ...but four old rows
    batch = make_batch(C_NEW, batch_size=1, labels=[label])
    data = model.data_preprocessor(batch, training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    with torch.no_grad():
        logits = model.decode_head.forward(model.extract_feat(data['inputs']))
        old = model.teacher.decode_head.forward(
            model.teacher.extract_feat(data['inputs']))
    q = F.softmax(old, dim=1)
    per_pixel = -(q * F.log_softmax(logits, dim=1)).sum(1)  # all C_NEW
    # Logits are 8x8: nearest labels of logit rows 0 and 1 are old.
    assert per_pixel.shape[1:] == (8, 8)
    expected = per_pixel[:, :2].mean()
    assert losses['distill.loss_distill_out'].item() == pytest.approx(
        expected.item(), rel=1e-5)


def test_apply_moves_the_teacher(teacher):
    path, _ = teacher
    model = _build(path).to(torch.float64)
    assert model.teacher.backbone.conv1.weight.dtype == torch.float64
    assert model.decode_head.aspp[0].weight.dtype == torch.float64


def test_step_checkpoint_is_a_plain_encoder_decoder(teacher, tmp_path):
    path, _ = teacher
    model = _build(path, distill_output=dict())
    optim = _sgd(model)
    model.train_step(make_batch(C_NEW), optim)
    ckpt = str(tmp_path / 'step_1.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'step': 1}}, ckpt)

    plain = MODELS.build(toy_model_cfg(C_NEW))
    plain.load_state_dict(torch.load(ckpt)['state_dict'], strict=True)
    assert_state_equal(state_copy(plain), state_copy(model))
    batch = make_batch(C_NEW)
    assert torch.equal(
        _logits(plain.eval(), batch), _logits(model.eval(), batch))

    # Resume: a fresh DistillEncoderDecoder (teacher rebuilt from step 0)
    # takes the step-k checkpoint strictly through mmengine's loader.
    resumed = _build(path, distill_output=dict())
    load_checkpoint(resumed, ckpt, strict=True)
    assert_state_equal(state_copy(resumed), state_copy(model))
    assert_state_equal(state_copy(resumed.teacher), state_copy(model.teacher))

    # ... and serves as the teacher of the next step (C_old = 5 -> 6).
    nxt = _build(ckpt, num_classes=C_NEW + 1, num_old_classes=C_NEW)
    assert nxt.num_old_classes == C_NEW


def test_bad_input(teacher, tmp_path):
    path, _ = teacher
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _build(missing)
    with pytest.raises(ValueError, match='has 3 classes but num_old_classes'):
        _build(path, num_old_classes=4)
    with pytest.raises(ValueError, match="L''_D .* EF"):
        _build(path, freeze_encoder=True, distill_feature=dict())
    with pytest.raises(ValueError, match="new_class_init='zeros'"):
        _build(path, new_class_init='zeros')
    with pytest.raises(ValueError, match='needs teacher_checkpoint'):
        _build(None)
    with pytest.raises(ValueError, match='a fixed classifier, which needs'):
        _build(path, num_classes=C_OLD)
    with pytest.raises(ValueError, match='must add classes'):
        _build(path, num_classes=C_OLD - 1)
    with pytest.raises(ValueError, match="variant='x'"):
        _build(path, distill_output=dict(variant='x'))
    with pytest.raises(ValueError, match='loss_weight=-1'):
        _build(path, distill_feature=dict(loss_weight=-1))
    other = str(tmp_path / 'fcn.pth')
    make_teacher(other, C_OLD, head='FCNHead')
    with pytest.raises(KeyError, match='same architecture'):
        _build(other)
