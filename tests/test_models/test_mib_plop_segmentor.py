"""MiB and PLOP inside DistillEncoderDecoder: every logged term equals its
loss module applied by hand, POD's pairs, one student forward, PLOP's
pseudo-labels, EF, another mmseg head, and short experiments."""
import math
import os.path as osp
import random
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from torch.utils.data import DataLoader, Dataset

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg_incremental.engine.hooks import PseudoLabelHook
from mmseg_incremental.engine.hooks.pseudo_label_hook import (CHECKPOINT_KEY,
                                                              spread_indices)
from mmseg_incremental.models.losses import (PODLoss, UnbiasedCrossEntropyLoss,
                                             UnbiasedDistillLoss)
from mmseg_incremental.models.utils import (plop_entropy_thresholds,
                                            plop_pseudo_label)
from test_models.utils import (assert_state_equal, distill_cfg, make_batch,
                               make_teacher, state_copy, toy_model_cfg)

C_OLD, C_NEW = 3, 5
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIB = dict(
    decode_loss=dict(type='UnbiasedCrossEntropyLoss'),
    distill_output=dict(type='UnbiasedDistillLoss', loss_weight=10.0),
    new_class_init='background')
POD = dict(
    type='PODLoss',
    loss_weight=0.01,
    last_layer_weight=0.0005,
    scales=(1, 2, 4))


# -------------------------------------------------------------- helpers
def _r18_cfg(num_classes, head='DeepLabV2Head'):
    """The embedded setup's tiny R18 (its backbone returns only the last
    stage), with DeepLabV2Head or mmseg's ASPPHead, at 32 px."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/models/deeplabv2_r18-tiny.py'))
    model = cfg.model.to_dict()
    model['data_preprocessor']['size'] = (32, 32)
    model['decode_head']['num_classes'] = num_classes
    if head == 'ASPPHead':
        model['decode_head'].update(
            type='ASPPHead',
            channels=32,
            dilations=(1, 6, 12, 18),
            dropout_ratio=0.0)
    return model


def _save_teacher(path, cfg):
    return make_teacher(
        path, cfg['decode_head']['num_classes'], seed=0, cfg=cfg)


@pytest.fixture
def toy_teacher(tmp_path):
    path = str(tmp_path / 'toy.pth')
    return path, make_teacher(path, C_OLD)


@pytest.fixture(params=['DeepLabV2Head', 'ASPPHead'])
def r18(request, tmp_path):
    """(head, teacher path, teacher model, student config builder)."""
    head = request.param
    path = str(tmp_path / f'r18_{head}.pth')
    ref = _save_teacher(path, _r18_cfg(C_OLD, head))

    def cfg(**kwargs):
        out = _r18_cfg(C_NEW, head)
        out.update(
            type='DistillEncoderDecoder', teacher_checkpoint=path, **kwargs)
        return out

    return head, path, ref, cfg


def _data(model, num_classes=C_NEW, seed=4, size=16):
    batch = make_batch(num_classes, seed=seed, size=size)
    data = model.data_preprocessor(batch, training=True)
    return data['inputs'], data['data_samples']


def _labels(samples):
    return torch.stack([s.gt_sem_seg.data for s in samples])[:, 0]


def _up(logits, label):
    return F.interpolate(
        logits, size=label.shape[-2:], mode='bilinear', align_corners=False)


def _sgd(model):
    return OptimWrapper(
        torch.optim.SGD(
            model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1))


# ------------------------------------------------------------------ MiB
@pytest.mark.parametrize('head', ['DeepLabV2Head', 'FCNHead'])
@pytest.mark.parametrize('resolution', ['labels', 'logits'])
def test_mib_terms_equal_the_losses_by_hand(tmp_path, head, resolution):
    path = str(tmp_path / 't.pth')
    ref = make_teacher(path, C_OLD, head=head)
    kwargs = dict(MIB, head=head)
    kwargs['distill_output'] = dict(
        MIB['distill_output'], resolution=resolution)
    model = MODELS.build(distill_cfg(path, C_NEW, **kwargs)).train()
    # mmseg's head computes the unbiased CE as its own loss, told C_old;
    # the checkpoint keys stay those of a stock EncoderDecoder.
    assert isinstance(model.decode_head.loss_decode, UnbiasedCrossEntropyLoss)
    assert model.decode_head.loss_decode.num_old_classes == C_OLD
    assert not isinstance(model.teacher.decode_head.loss_decode,
                          UnbiasedCrossEntropyLoss)
    stock = MODELS.build(toy_model_cfg(C_NEW, head=head))
    assert model.state_dict().keys() == stock.state_dict().keys()

    inputs, samples = _data(model)
    losses = model.loss(inputs, samples)
    assert set(losses) == {
        'decode.loss_unbiased_ce', 'decode.acc_seg', 'distill.loss_unbiased_kd'
    }
    label = _labels(samples)
    s_logits = model.decode_head(model.extract_feat(inputs))
    with torch.no_grad():
        t_logits = ref.decode_head(ref.extract_feat(inputs))
    ce = UnbiasedCrossEntropyLoss()(_up(s_logits, label), label, C_OLD)
    if resolution == 'labels':
        kd = UnbiasedDistillLoss(loss_weight=10.0)(_up(s_logits, label),
                                                   _up(t_logits, label))
    else:
        kd = UnbiasedDistillLoss(loss_weight=10.0)(s_logits, t_logits)
    assert losses['decode.loss_unbiased_ce'].item() == pytest.approx(
        ce.item(), rel=1e-5)
    assert losses['distill.loss_unbiased_kd'].item() == pytest.approx(
        kd.item(), rel=1e-5)
    # Per pixel: label 1 (old) counts as background -> p(bg) + p(old).
    p = F.softmax(_up(s_logits, label), dim=1)
    valid = label != 255
    y = label.clamp(max=C_NEW - 1)
    pick = torch.where(y < C_OLD, p[:, :C_OLD].sum(1),
                       p.gather(1, y[:, None])[:, 0])
    by_pixel = -(pick.log() * valid).sum() / valid.sum()
    assert ce.item() == pytest.approx(by_pixel.item(), rel=1e-5)


def test_mib_with_ef_keeps_the_encoder_bit_identical(toy_teacher):
    path, _ = toy_teacher
    model = MODELS.build(distill_cfg(path, C_NEW, freeze_encoder=True, **MIB))
    encoder = state_copy(model.backbone)
    head = state_copy(model.decode_head)
    optim = _sgd(model)
    for step in range(3):
        log = model.train_step(make_batch(C_NEW, seed=20 + step), optim)
        assert math.isfinite(log['distill.loss_unbiased_kd'].item())
    assert_state_equal(state_copy(model.backbone), encoder)
    assert_state_equal(
        state_copy(model.backbone), state_copy(model.teacher.backbone))
    assert model._teacher_shares_encoder()
    assert any(not torch.equal(head[k], v)
               for k, v in state_copy(model.decode_head).items())


# ------------------------------------------------------------------ POD
def test_pod_pairs_one_student_forward_and_value(r18):
    head, path, ref, cfg = r18
    # The backbone's outputs (after the ReLU) as POD's stage maps; PLOP's
    # default, the sums before it: tests/test_models/
    # test_pod_pre_activation.py.
    model = MODELS.build(
        cfg(distill_pod=dict(POD, pod_inputs='post_relu'))).train()
    # The backbone returns every stage, the heads still read stage 3 and
    # the weights keep their names.
    assert model.backbone.out_indices == (0, 1, 2, 3)
    assert model.teacher.backbone.out_indices == (0, 1, 2, 3)
    assert model.decode_head.in_index == 3
    stock = MODELS.build(_r18_cfg(C_NEW, head))
    assert stock.backbone.out_indices == (3, )
    assert model.state_dict().keys() == stock.state_dict().keys()

    calls = dict(student=0, teacher=0)

    def count(name):

        def hook(*_):
            calls[name] += 1

        return hook

    model.backbone.register_forward_hook(count('student'))
    model.teacher.backbone.register_forward_hook(count('teacher'))
    inputs, samples = _data(model, size=32)
    with mock.patch.object(
            PODLoss, 'forward', autospec=True,
            side_effect=PODLoss.forward) as pod:
        losses = model.loss(inputs, samples)
    assert calls == dict(student=1, teacher=1)
    student_maps, teacher_maps = pod.call_args.args[1:3]
    assert pod.call_args.kwargs == dict(
        num_classes=C_NEW, num_new_classes=C_NEW - C_OLD)
    # 4 stages (+ ASPP's output before its classifier) + the logits.
    expected = [(16, 8), (32, 4), (64, 4), (128, 4)]
    if head == 'ASPPHead':
        expected.append((32, 4))
    expected.append((C_NEW, 4))
    assert [(m.shape[1], m.shape[2]) for m in student_maps] == expected
    assert [m.shape for m in teacher_maps[:-1]
            ] == [m.shape for m in student_maps[:-1]]
    assert teacher_maps[-1].shape[1] == C_OLD
    assert set(losses) == {
        'decode.loss_ce', 'decode.acc_seg', 'distill.loss_pod'
    }

    # By hand: the student's maps again, the teacher's from the stock
    # M_{k-1} asked for its stages.
    stages = model.backbone(inputs)
    maps = list(stages)
    if head == 'ASPPHead':
        maps.append(model.decode_head._forward_feature(stages))
    maps.append(model.decode_head(stages))
    ref.backbone.out_indices = (0, 1, 2, 3)
    with torch.no_grad():
        t_stages = ref.backbone(inputs)
        old = list(t_stages)
        last = [t_stages[3]]  # what the stock head reads (in_index 0)
        if head == 'ASPPHead':
            old.append(ref.decode_head._forward_feature(last))
        old.append(ref.decode_head(last))
    value = PODLoss(**{
        k: v
        for k, v in POD.items() if k != 'type'
    })(maps, old, num_classes=C_NEW, num_new_classes=C_NEW - C_OLD)
    assert value.item() > 0
    assert losses['distill.loss_pod'].item() == pytest.approx(
        value.item(), rel=1e-5)

    # M_k still loads into the stock network of the step config (last
    # stage only) and predicts the same.
    stock.load_state_dict(model.state_dict(), strict=True)
    model.eval()
    stock.eval()
    with torch.no_grad():
        assert torch.equal(stock._forward(inputs), model._forward(inputs))


# ----------------------------------------------------------------- PLOP
def _plop_model(path, **kwargs):
    kwargs = dict(
        dict(pseudo_label=dict(), new_class_init='background'), **kwargs)
    return MODELS.build(distill_cfg(path, C_NEW, **kwargs)).train()


def test_pseudo_labels_change_only_background_and_weight_the_ce(toy_teacher):
    path, ref = toy_teacher
    model = _plop_model(path)
    inputs, samples = _data(model)
    with pytest.raises(RuntimeError, match='PseudoLabelHook'):
        model.loss(inputs, samples)
    label = _labels(samples)
    with torch.no_grad():
        t_logits = _up(ref.decode_head(ref.extract_feat(inputs)), label)
    thresholds = model.fit_pseudo_label_thresholds([(inputs, samples)])
    want, max_entropy = plop_entropy_thresholds([(t_logits, label)], C_NEW)
    assert torch.equal(thresholds, want)

    loss_decode = model.decode_head.loss_decode
    with mock.patch.object(
            loss_decode, 'forward', wraps=loss_decode.forward) as ce:
        losses = model.loss(inputs, samples)
    new_label = ce.call_args.args[1]
    weight = ce.call_args.kwargs['weight']
    changed = new_label != label
    assert changed.any()
    assert (label[changed] < C_OLD).all()  # background/old pixels only
    keep = (label >= C_OLD) | (label == 255)
    assert torch.equal(new_label[keep], label[keep])
    assert ((new_label[changed] == 255) | (new_label[changed] < C_OLD)).all()

    by_hand, factor = plop_pseudo_label(t_logits, label, C_OLD, want,
                                        max_entropy)
    assert torch.equal(new_label, by_hand)
    assert torch.equal(weight, factor[:, None, None].expand_as(label))
    s_logits = model.decode_head(model.extract_feat(inputs))
    pixel = F.cross_entropy(
        _up(s_logits, label), by_hand, ignore_index=255, reduction='none')
    # The toy head's CrossEntropyLoss averages over non-ignored pixels.
    ce_value = (pixel * factor[:, None, None]).sum() / (by_hand != 255).sum()
    assert losses['decode.loss_ce'].item() == pytest.approx(
        ce_value.item(), rel=1e-5)
    assert losses['decode.pseudo_factor'].item() == pytest.approx(
        factor.mean().item())


def test_plop_with_ef_and_both_parts(r18):
    head, path, _, cfg = r18
    model = MODELS.build(
        cfg(freeze_encoder=True,
            distill_pod=POD,
            pseudo_label=dict(),
            new_class_init='background'))
    encoder = state_copy(model.backbone)
    batch = make_batch(C_NEW, size=32, seed=3)
    model.fit_pseudo_label_thresholds(
        [tuple(model.data_preprocessor(batch, True).values())])
    inputs, samples = _data(model, size=32)
    with mock.patch.object(
            PODLoss, 'forward', autospec=True,
            side_effect=PODLoss.forward) as pod:
        model.loss(inputs, samples)
    student_maps, teacher_maps = pod.call_args.args[1:3]
    # EF shares the encoder: the stage pairs are the same tensors.
    assert all(s is t for s, t in zip(student_maps[:4], teacher_maps[:4]))
    optim = _sgd(model)
    for step in range(2):
        log = model.train_step(
            make_batch(C_NEW, size=32, seed=30 + step), optim)
        assert math.isfinite(log['loss'].item())
    assert_state_equal(state_copy(model.backbone), encoder)


def _assert_same_state(a, b):
    """Equal pseudo-label states (PLOP's median may be NaN: equal NaNs)."""
    np.testing.assert_array_equal(a.pop('thresholds'), b['thresholds'])
    assert a == {k: v for k, v in b.items() if k != 'thresholds'}


class _RandomDataset(Dataset):
    """Items as a dataloader's pipeline gives them; each draw moves the
    Python, numpy and torch generators."""

    def __init__(self):
        batch = make_batch(C_NEW, batch_size=6, seed=7)
        self.items = [
            dict(inputs=i, data_samples=s)
            for i, s in zip(batch['inputs'], batch['data_samples'])
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        random.random()
        np.random.rand()
        torch.rand(1)
        return self.items[idx]


def test_hook_fits_once_keeps_randomness_and_checkpoints(toy_teacher):
    path, _ = toy_teacher
    model = _plop_model(path)
    loader = DataLoader(
        _RandomDataset(), batch_size=4, collate_fn=pseudo_collate)
    runner = SimpleNamespace(model=model, train_dataloader=loader)
    states = (random.getstate(), np.random.get_state()[1].copy(),
              torch.get_rng_state())
    hook = PseudoLabelHook()
    hook.before_train(runner)
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    fitted = model.pseudo_label_state()
    # The same as the teacher over all 6 images, batches of the loader's 4.
    other = _plop_model(path)
    data = [loader.dataset.items[:4], loader.dataset.items[4:]]
    other.fit_pseudo_label_thresholds([
        tuple(other.data_preprocessor(pseudo_collate(d), True).values())
        for d in data
    ])
    _assert_same_state(other.pseudo_label_state(), fitted)

    # Stored in checkpoints; a resumed step reads it back, a step with
    # other settings does not.
    checkpoint = dict()
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint[CHECKPOINT_KEY] is not None
    resumed = _plop_model(path)
    hook.after_load_checkpoint(SimpleNamespace(model=resumed), checkpoint)
    _assert_same_state(resumed.pseudo_label_state(), fitted)
    with mock.patch.object(resumed, 'fit_pseudo_label_thresholds') as fit:
        hook.before_train(SimpleNamespace(model=resumed))
    fit.assert_not_called()
    stranger = _plop_model(path, pseudo_label=dict(median_rule='interpolated'))
    hook.after_load_checkpoint(SimpleNamespace(model=stranger), checkpoint)
    assert stranger.pseudo_label_state() is None
    # Models without pseudo-labelling: nothing happens.
    plain = MODELS.build(distill_cfg(path, C_NEW))
    hook.before_train(SimpleNamespace(model=plain))
    hook.before_save_checkpoint(SimpleNamespace(model=plain), checkpoint := {})
    assert checkpoint == {}
    assert spread_indices(10, 4) == [0, 3, 6, 9]
    assert spread_indices(3, None) == [0, 1, 2]


def test_bad_arguments(toy_teacher):
    path, _ = toy_teacher
    with pytest.raises(ValueError, match="'pre_logits', 'stages'"):
        MODELS.build(
            distill_cfg(
                path,
                C_NEW,
                distill_output=dict(),
                distill_pod=POD,
                teacher_cache=dict()))
    with pytest.raises(ValueError, match="pseudo_label got \\['bins'\\]"):
        MODELS.build(distill_cfg(path, C_NEW, pseudo_label=dict(bins=3)))
    with pytest.raises(ValueError, match="type='x' is unknown"):
        MODELS.build(distill_cfg(path, C_NEW, pseudo_label=dict(type='x')))
    # A fixed classifier does not tell |S_k|.
    fixed = str(osp.join(osp.dirname(path), 'fixed.pth'))
    make_teacher(fixed, C_NEW)
    with pytest.raises(ValueError, match='num_seen_classes'):
        MODELS.build(
            distill_cfg(fixed, C_NEW, num_old_classes=C_OLD, distill_pod=POD))
    model = MODELS.build(
        distill_cfg(
            fixed,
            C_NEW,
            num_old_classes=C_OLD,
            num_seen_classes=C_OLD + 1,
            distill_pod=POD,
            pseudo_label=dict()))
    assert model.num_seen_classes == C_OLD + 1
    # The pseudo-label cache path: teacher logits replayed.
    cached = MODELS.build(
        distill_cfg(path, C_NEW, pseudo_label=dict(), teacher_cache=dict()))
    inputs, samples = _data(cached)
    cached.fit_pseudo_label_thresholds([(inputs, samples)])
    assert math.isfinite(cached.loss(inputs, samples)['decode.loss_ce'])


def test_mib_and_plop_under_cpu_autocast(r18):
    """bf16 autocast (the experiment's amp on the CPU): the teacher runs as
    its low-precision copy, the MiB/PLOP terms come out fp32 and finite."""
    _, _, _, cfg = r18
    model = MODELS.build(cfg(distill_pod=POD, pseudo_label=dict(),
                             **MIB)).train()
    inputs, samples = _data(model, size=32)
    model.fit_pseudo_label_thresholds([(inputs, samples)])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(inputs, samples)
    assert isinstance(model._low_precision, tuple)
    for key in ('decode.loss_unbiased_ce', 'distill.loss_unbiased_kd',
                'distill.loss_pod'):
        assert losses[key].dtype == torch.float32, key
        assert math.isfinite(losses[key].item()), key
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(
        torch.isfinite(p.grad).all() for p in model.decode_head.parameters()
        if p.grad is not None)
