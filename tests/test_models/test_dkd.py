"""DKD (Baek et al., NeurIPS 2022) as a term, a head and two losses.

Every loss is checked against a computation written apart here: numpy in
float64 with explicit loops over classes and pixels, DKD's own formulas
(``models/loss.py``, ``models/model.py:77-99``, ``trainer/trainer_voc.py``
of cvlab-yonsei/DKD) rather than this package's vectorised ones. The head
and the term are checked on the toy segmentor of ``test_models.utils``.
"""
import math
import types

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.optim import OptimWrapper

from mmseg.registry import HOOKS, MODELS
from mmseg_incremental.models.decode_heads.dkd_head import DKDHead
from mmseg_incremental.models.losses.dkd_loss import (
    AuxClassifierLoss, MultiLabelBCELoss, aux_classifier_loss,
    decomposed_responses, multilabel_bce_loss, sigmoid_distill_loss)
from test_models.utils import make_batch, make_teacher, toy_model_cfg

C_OLD, C_NEW = 4, 6  # outputs of M_{k-1} and M_k (output 0: the aux)


# --- independent computations (numpy, float64, loops) ----------------------
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _bce(x, t, pos_weight=1.0):
    """One BCEWithLogits term: -[p t log s(x) + (1 - t) log(1 - s(x))]."""
    s = _sigmoid(x)
    return -(pos_weight * t * math.log(s) + (1 - t) * math.log(1 - s))


def _np_mbce(logits, label, num_old, pos_weight):
    """WBCELoss (loss.py:59-90) reduced as trainer_voc.py:348-351/374:
    per new class, the mean over every pixel (255 included, target 0),
    summed over the classes."""
    n, c, h, w = logits.shape
    total = 0.0
    for k in range(num_old, c):
        acc = 0.0
        for i in range(n):
            for y in range(h):
                for x in range(w):
                    t = 1.0 if label[i, y, x] == k else 0.0
                    acc += _bce(logits[i, k, y, x], t, pos_weight)
        total += acc / (n * h * w)
    return total


def _np_ac(logits):
    n, _, h, w = logits.shape
    return sum(
        _bce(logits[i, 0, y, x], 0.0) for i in range(n) for y in range(h)
        for x in range(w)) / (
            n * h * w)


def _np_kd(student, teacher):
    """KDLoss (loss.py:93-107) reduced as trainer_voc.py:354-372."""
    n, c, h, w = student.shape
    total = 0.0
    for k in range(c):
        acc = 0.0
        for i in range(n):
            for y in range(h):
                for x in range(w):
                    acc += _bce(student[i, k, y, x],
                                _sigmoid(teacher[i, k, y, x]))
        total += acc / (n * h * w)
    return total


def _np_responses(features, weight):
    """model.py:77-99 literally: w.where(w > 0, 0) / w.where(w < 0, 0),
    then matmul(x.permute(0, 2, 3, 1), w.T).permute(0, 3, 1, 2)."""
    w = weight.reshape(weight.shape[0], weight.shape[1])
    pos = np.where(w > 0, w, 0.0)
    neg = np.where(w < 0, w, 0.0)
    x = features.transpose(0, 2, 3, 1)
    return ((x @ pos.T).transpose(0, 3, 1,
                                  2), (x @ neg.T).transpose(0, 3, 1, 2))


def _np_predict(logits):
    """trainer_voc.py:181-185: sigmoid, argmax over the classes + 1,
    background where no class passes 0.5."""
    prob = 1.0 / (1.0 + np.exp(-logits))
    pred = prob[:, 1:].argmax(axis=1) + 1
    pred[(prob[:, 1:] > 0.5).sum(axis=1) == 0] = 0
    return pred


def _random(seed, *shape):
    return torch.randn(
        *shape,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64) * 2


def _labels(seed, n, h, w, classes):
    gen = torch.Generator().manual_seed(seed)
    label = torch.randint(0, classes, (n, h, w), generator=gen)
    label[:, 0, :2] = 255
    return label


# --- the losses --------------------------------------------------------------
def test_losses_equal_dkds_formulas_by_hand():
    logits = _random(0, 2, C_NEW, 5, 4)
    label = _labels(1, 2, 5, 4, C_NEW)
    np_logits, np_label = logits.numpy(), label.numpy()
    for num_old, pos_weight in ((1, 2.0), (C_OLD, 1.0), (C_OLD, 35.0)):
        got = multilabel_bce_loss(logits, label, num_old, pos_weight)
        want = _np_mbce(np_logits, np_label, num_old, pos_weight)
        assert got.item() == pytest.approx(want, abs=1e-6, rel=1e-9)
        module = MultiLabelBCELoss(
            pos_weight=pos_weight, loss_weight=0.5, num_old_classes=num_old)
        assert module(logits, label).item() == pytest.approx(
            0.5 * want, abs=1e-6, rel=1e-9)
    assert aux_classifier_loss(logits).item() == pytest.approx(
        _np_ac(np_logits), abs=1e-6, rel=1e-9)
    assert AuxClassifierLoss(loss_weight=3.0)(logits, label).item() == \
        pytest.approx(3.0 * _np_ac(np_logits), abs=1e-6, rel=1e-9)
    teacher = _random(2, 2, C_OLD - 1, 5, 4)
    student = logits[:, 1:C_OLD]
    assert sigmoid_distill_loss(student, teacher).item() == pytest.approx(
        _np_kd(student.numpy(), teacher.numpy()), abs=1e-6, rel=1e-9)
    # fp32 and bf16 inputs compute in fp32 to the same values
    got32 = multilabel_bce_loss(logits.float(), label, C_OLD, 2.0)
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(
        _np_mbce(
            np_logits.astype(np.float32).astype(np.float64), np_label, C_OLD,
            2.0),
        rel=1e-5)


def test_decomposed_responses_equal_dkds_matmul():
    features = _random(3, 2, 7, 3, 5).abs()  # after a ReLU, as x_pl
    weight = _random(4, C_OLD - 1, 7, 1, 1)
    pos, neg = decomposed_responses(features, weight)
    np_pos, np_neg = _np_responses(features.numpy(), weight.numpy())
    np.testing.assert_allclose(pos.numpy(), np_pos, atol=1e-6, rtol=1e-9)
    np.testing.assert_allclose(neg.numpy(), np_neg, atol=1e-6, rtol=1e-9)
    # the two parts sum to the classifier's response without its bias
    np.testing.assert_allclose(
        (pos + neg).numpy(), F.conv2d(features, weight).numpy(), atol=1e-9)
    # DKD's L_dkd_pos / L_dkd_neg: the KD of these responses
    old_pos, old_neg = _np_responses(
        _random(5, 2, 7, 3, 5).abs().numpy(),
        _random(6, C_OLD - 1, 7, 1, 1).numpy())
    assert sigmoid_distill_loss(pos, torch.from_numpy(old_pos)).item() == \
        pytest.approx(_np_kd(np_pos, old_pos), abs=1e-6, rel=1e-9)
    assert sigmoid_distill_loss(neg, torch.from_numpy(old_neg)).item() == \
        pytest.approx(_np_kd(np_neg, old_neg), abs=1e-6, rel=1e-9)


# --- the head ----------------------------------------------------------------
def _head_cfg(num_classes, **kwargs):
    cfg = toy_model_cfg(num_classes, head='FCNHead')
    head = dict(
        cfg['decode_head'],
        type='DKDHead',
        head_type='FCNHead',
        dropout_ratio=0.1,
        norm_cfg=dict(type='BN'))
    head.pop('loss_decode')
    head.update(kwargs)
    cfg['decode_head'] = head
    return cfg


def test_head_keeps_the_wrapped_heads_keys_and_detaches_the_aux():
    torch.manual_seed(0)
    head = MODELS.build(_head_cfg(C_NEW)['decode_head'])
    assert isinstance(head, DKDHead) and type(head).__name__ == 'DKDFCNHead'
    stock_cfg = dict(
        toy_model_cfg(C_NEW, head='FCNHead')['decode_head'],
        dropout_ratio=0.1,
        norm_cfg=dict(type='BN'))
    stock = MODELS.build(stock_cfg)
    assert head.state_dict().keys() == stock.state_dict().keys()
    stock.load_state_dict(head.state_dict(), strict=True)
    head.eval()
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    out = head([x, x])
    pre = head._forward_feature([x, x])
    np.testing.assert_allclose(
        out.detach().numpy(), head.conv_seg(pre).detach().numpy(), atol=1e-6)
    # output 0 (the aux classifier) trains row 0 only, never the features
    out[:, 0].sum().backward()
    assert x.grad is None or not x.grad.any()
    grad = head.conv_seg.weight.grad
    assert grad[0].abs().sum() > 0 and not grad[1:].any()
    head.zero_grad()
    head([x, x])[:, 1:].sum().backward()
    assert x.grad.abs().sum() > 0 and not head.conv_seg.weight.grad[0].any()


def test_prediction_is_dkds_rule():
    torch.manual_seed(0)
    logits = torch.randn(2, C_NEW, 6, 5) * 3
    logits[0, 1:, 0, 0] = -1.0  # no class: background
    logits[0, 1:, 0, 1] = -2.0
    logits[0, 2, 0, 1] = 0.0  # sigmoid exactly 0.5: not > 0.5
    logits[0, 0, 1, :] = 50.0  # the aux output is never predicted
    head = MODELS.build(_head_cfg(C_NEW)['decode_head'])
    pred = head.decision_logits(logits).argmax(dim=1).numpy()
    np.testing.assert_array_equal(pred, _np_predict(logits.numpy()))
    assert pred[0, 0, 0] == 0 and pred[0, 0, 1] == 0

    # Through mmseg's EncoderDecoder.predict (resize, argmax): DKD's rule
    # on the head's raw logits upsampled to the input.
    cfg = _head_cfg(C_NEW)
    cfg['test_cfg'] = ConfigDict(mode='whole')
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # logits of both signs: both outcomes occur
        model.decode_head.conv_seg.weight.normal_(0, 1)
        model.decode_head.conv_seg.bias.fill_(-1.0)
    model.eval()
    data = model.data_preprocessor(make_batch(C_NEW), False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
        raw = model.decode_head.forward(model.extract_feat(data['inputs']))
        raw = F.interpolate(
            raw,
            size=data['inputs'].shape[-2:],
            mode='bilinear',
            align_corners=False)
    want = _np_predict(raw.numpy())
    got = np.stack([r.pred_sem_seg.data[0].numpy() for r in results])
    np.testing.assert_array_equal(got, want)
    assert 0 < (want == 0).mean() < 1  # both outcomes occur


# --- the term at step k ------------------------------------------------------
@pytest.fixture
def dkd_model(tmp_path):
    """M_1 (6 outputs) under DKDTerm, its teacher M_0 (4 outputs)."""
    path = str(tmp_path / 'm0.pth')
    make_teacher(path, C_OLD, cfg=_head_cfg(C_OLD))
    cfg = _head_cfg(C_NEW)
    cfg.update(
        type='IncrementalEncoderDecoder',
        teacher_checkpoint=path,
        distill_terms=dict(dkd=dict(type='DKDTerm')))
    torch.manual_seed(1)
    return MODELS.build(cfg)


def test_new_rows_start_from_the_teachers_aux_classifier(dkd_model):
    teacher = dkd_model.teacher.decode_head.conv_seg
    for when in ('built', 'init_weights'):
        if when == 'init_weights':
            dkd_model.init_weights()  # as the Runner does
        conv = dkd_model.decode_head.conv_seg
        assert torch.equal(conv.weight[:C_OLD], teacher.weight), when
        assert torch.equal(conv.bias[:C_OLD], teacher.bias), when
        for row in range(C_OLD, C_NEW):
            assert torch.equal(conv.weight[row], teacher.weight[0]), when
            assert torch.equal(conv.bias[row], teacher.bias[0]), when
    # the step-k losses, C_old set, installed in the student's head only
    mbce = dkd_model.decode_head.loss_decode[0]
    assert (mbce.num_old_classes, mbce.pos_weight) == (C_OLD, 1.0)
    assert dkd_model.teacher.decode_head.loss_decode[0].num_old_classes == 1
    assert not dkd_model.distill_terms.dkd.state_dict()


def test_bn_and_dropout_stay_frozen_after_train(dkd_model):
    dkd_model.train()
    norms = [m for m in dkd_model.modules() if isinstance(m, nn.BatchNorm2d)]
    drops = [m for m in dkd_model.modules() if isinstance(m, nn.Dropout2d)]
    assert len(norms) == 3 and len(drops) == 1
    assert dkd_model.training and dkd_model.decode_head.training
    assert not any(m.training for m in norms + drops)
    assert all(not p.requires_grad for m in norms for p in m.parameters())
    assert dkd_model.decode_head.conv_seg.weight.requires_grad
    assert not dkd_model.teacher.training
    # a forward leaves the running statistics as M_{k-1} left them
    before = {
        k: v.clone()
        for k, v in dkd_model.state_dict().items() if 'running' in k
    }
    data = dkd_model.data_preprocessor(make_batch(C_NEW), True)
    dkd_model.loss(data['inputs'], data['data_samples'])
    for key, value in before.items():
        assert torch.equal(dkd_model.state_dict()[key], value), key


def _np_losses(model, inputs, label):
    """Every DKD loss of a step computed apart: the two networks run by
    hand (the FCN head's layers, then a plain 1x1 conv), the logits
    upsampled by F.interpolate, the losses by the numpy loops above."""

    def run(net):
        pre = net.decode_head._forward_feature(net.extract_feat(inputs))
        conv = net.decode_head.conv_seg
        logits = F.conv2d(pre, conv.weight, conv.bias)
        up = F.interpolate(
            logits,
            size=label.shape[-2:],
            mode='bilinear',
            align_corners=False)
        return pre.double().numpy(), up.double().numpy(), \
            conv.weight.detach().double().numpy()

    with torch.no_grad():
        pre, up, w = run(model)
        old_pre, old_up, old_w = run(model.teacher)
    lab = label.numpy()
    pos, neg = _np_responses(pre, w[1:C_OLD])
    old_pos, old_neg = _np_responses(old_pre, old_w[1:C_OLD])
    decay = model.decode_head.conv_seg
    square = float((decay.weight[C_OLD:].double()**2).sum() +
                   (decay.bias[C_OLD:].double()**2).sum())
    return {
        'decode.loss_mbce': _np_mbce(up, lab, C_OLD, 1.0),
        'decode.loss_ac': _np_ac(up),
        'distill.loss_kd': 5 * _np_kd(up[:, 1:C_OLD], old_up[:, 1:C_OLD]),
        'distill.loss_dkd_pos': 5 * _np_kd(pos, old_pos),
        'distill.loss_dkd_neg': 5 * _np_kd(neg, old_neg),
        'distill.loss_wd_new': 0.5 * 1e-4 * square,
    }


def test_step_losses_equal_an_independent_computation(dkd_model):
    dkd_model.train()  # BN and dropout frozen: the forward is deterministic
    labels = [
        torch.randint(
            0, C_NEW, (1, 16, 16), generator=torch.Generator().manual_seed(i))
        for i in range(2)
    ]
    for label in labels:  # step-1 labels: background or new classes
        label[(label > 0) & (label < C_OLD)] = 0
        label[:, :1] = 255
    data = dkd_model.data_preprocessor(make_batch(C_NEW, labels=labels), True)
    losses = dkd_model.loss(data['inputs'], data['data_samples'])
    label = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    want = _np_losses(dkd_model, data['inputs'], label)
    assert set(want) | {'decode.acc_seg'} == set(losses)
    for key, value in want.items():
        assert losses[key].item() == pytest.approx(value, rel=1e-5), key
    assert all(v > 0 for v in want.values())

    # loss_wd_new's gradient is SGD's weight decay of the new rows only
    dkd_model.zero_grad()
    losses['distill.loss_wd_new'].backward()
    conv = dkd_model.decode_head.conv_seg
    assert torch.allclose(conv.weight.grad[C_OLD:],
                          1e-4 * conv.weight[C_OLD:].detach())
    assert not conv.weight.grad[:C_OLD].any()


def test_hook_sets_the_weight_decay_of_every_group(dkd_model):
    optimizer = torch.optim.SGD([
        dict(params=dkd_model.backbone.parameters()),
        dict(params=dkd_model.decode_head.parameters(), lr=0.1)
    ],
                                lr=0.01,
                                weight_decay=1e-4)
    runner = types.SimpleNamespace(
        model=dkd_model, optim_wrapper=OptimWrapper(optimizer))
    HOOKS.build(dict(type='DKDHook')).before_train(runner)
    assert [g['weight_decay'] for g in optimizer.param_groups] == [0.0, 0.0]
    # other models: nothing changes
    plain = MODELS.build(_head_cfg(C_NEW))
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.1, weight_decay=1e-4)
    runner = types.SimpleNamespace(
        model=plain, optim_wrapper=OptimWrapper(optimizer))
    HOOKS.build(dict(type='DKDHook')).before_train(runner)
    assert optimizer.param_groups[0]['weight_decay'] == 1e-4


def test_bad_configurations_are_refused(tmp_path):
    with pytest.raises(TypeError, match='head_type'):
        MODELS.build(
            dict(type='DKDHead', in_channels=8, channels=4, num_classes=3))
    with pytest.raises(TypeError, match='1x1 conv_seg'):
        MODELS.build(
            dict(
                type='DKDHead',
                head_type='DeepLabV2Head',
                in_channels=8,
                num_classes=3))
    with pytest.raises(ValueError, match='softmax CrossEntropyLoss'):
        MODELS.build(
            _head_cfg(
                3, loss_decode=dict(type='CrossEntropyLoss'))['decode_head'])
    with pytest.raises(ValueError, match='weight >= 0'):
        MODELS.build(dict(type='DKDTerm', kd=-1))
    path = str(tmp_path / 'm0.pth')
    make_teacher(path, C_OLD, cfg=_head_cfg(C_OLD))
    cfg = _head_cfg(C_NEW)
    cfg.update(
        type='IncrementalEncoderDecoder',
        teacher_checkpoint=path,
        distill_terms=dict(dkd=dict(type='DKDTerm')),
        new_class_init='background')
    with pytest.raises(ValueError, match="new_class_init='default'"):
        MODELS.build(cfg)
    softmax = toy_model_cfg(C_OLD, head='FCNHead')
    make_teacher(path, C_OLD, cfg=softmax)
    cfg = toy_model_cfg(C_NEW, head='FCNHead')
    cfg.update(
        type='IncrementalEncoderDecoder',
        teacher_checkpoint=path,
        distill_terms=dict(dkd=dict(type='DKDTerm')))
    with pytest.raises(TypeError, match='needs a DKDHead'):
        MODELS.build(cfg)
