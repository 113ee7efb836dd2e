"""PLOP's POD on the stage outputs before their last activation.

PLOP's residual blocks hand POD the residual sum before the last
activation (arthurdouillard/CVPR2021_PLOP ``modules/residual.py``
l.125-138). The tensors that reach ``PODLoss`` are compared here with that
sum recomputed by hand from the weights of mmseg's ``BasicBlock`` /
``Bottleneck``, for the student and the teacher, with and without EF;
``pod_inputs='post_relu'`` gives the backbone's outputs as before.
"""
import os.path as osp
from unittest import mock

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config

from mmseg.registry import MODELS
from mmseg_incremental.models.losses import PODLoss
from mmseg_incremental.models.terms.plop import LocalPODTerm
from mmseg_incremental.models.utils.stages import (PreActivationCapture,
                                                   last_blocks)
from test_models.utils import distill_cfg, make_batch, make_teacher

C_OLD, C_NEW = 3, 5
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
POD_ARGS = dict(loss_weight=0.01, last_layer_weight=0.0005, scales=(1, 2, 4))


def _r18_cfg(num_classes):
    """The embedded setup's tiny ResNetV1c-18 + DeepLabV2Head at 32 px."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/models/deeplabv2_r18-tiny.py'))
    model = cfg.model.to_dict()
    model['data_preprocessor']['size'] = (32, 32)
    model['decode_head']['num_classes'] = num_classes
    return model


@pytest.fixture
def r18(tmp_path):
    """(teacher path, teacher model M_{k-1}, student config builder)."""
    path = str(tmp_path / 'r18.pth')
    ref = make_teacher(path, C_OLD, seed=0, cfg=_r18_cfg(C_OLD))

    def cfg(**pod):
        out = _r18_cfg(C_NEW)
        out.update(
            type='IncrementalEncoderDecoder',
            teacher_checkpoint=path,
            distill_terms=dict(
                pod=dict(type='LocalPODTerm', **POD_ARGS, **pod)),
            new_class_init='background')
        return out

    return path, ref, cfg


def _inputs(model, seed=4):
    data = model.data_preprocessor(
        make_batch(C_NEW, seed=seed, size=32), training=True)
    return data['inputs'], data['data_samples']


def _pod_maps(model, inputs, samples):
    """The loss and the (student, teacher) maps that reached PODLoss."""
    with mock.patch.object(
            PODLoss, 'forward', autospec=True,
            side_effect=PODLoss.forward) as pod:
        losses = model.loss(inputs, samples)
    assert pod.call_count == 1
    student, teacher = pod.call_args.args[1:3]
    return losses, student, teacher


def _residual_sum(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mmseg's BasicBlock/Bottleneck ``_inner_forward`` written out: the
    residual sum that the block's final ``self.relu`` receives."""
    if hasattr(block, 'conv3'):  # Bottleneck
        out = F.relu(block.norm1(block.conv1(x)))
        out = F.relu(block.norm2(block.conv2(out)))
        out = block.norm3(block.conv3(out))
    else:  # BasicBlock
        out = F.relu(block.norm1(block.conv1(x)))
        out = block.norm2(block.conv2(out))
    identity = x if block.downsample is None else block.downsample(x)
    return out + identity


@torch.no_grad()
def _by_hand(backbone, x):
    """Every stage's (pre-activation, post-activation) output, the last
    block of each stage recomputed by :func:`_residual_sum`."""
    if backbone.deep_stem:
        x = backbone.stem(x)
    else:
        x = F.relu(backbone.norm1(backbone.conv1(x)))
    x = backbone.maxpool(x)
    pre, post = [], []
    for name in backbone.res_layers:
        layer = getattr(backbone, name)
        for block in list(layer)[:-1]:
            x = block(x)
        pre.append(_residual_sum(layer[-1], x))
        x = layer[-1](x)
        post.append(x)
        # The block's own output is the ReLU of the sum.
        assert torch.allclose(F.relu(pre[-1]), x, atol=1e-5)
    return pre, post


def _close(a, b):
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def _assert_no_leftovers(model):
    """No hook stays on any block or activation; every ReLU in place
    again."""
    for backbone in (model.backbone, model.teacher.backbone):
        for module in backbone.modules():
            assert not module._forward_hooks, module
            assert not module._forward_pre_hooks, module
            if isinstance(module, nn.ReLU):
                assert module.inplace
        assert 'forward' not in backbone.__dict__


# ------------------------------------------------------------- pre-ReLU
def test_pod_reads_pre_relu_stages_of_student_and_teacher(r18):
    path, ref, cfg = r18
    model = MODELS.build(cfg()).train()
    term = model.distill_terms['pod']
    assert term.pod_inputs == 'pre_relu' and term.reads_pre_act_stages
    # Capturing changes no parameter name: the keys of a stock network.
    stock = MODELS.build(_r18_cfg(C_NEW))
    assert model.state_dict().keys() == stock.state_dict().keys()
    assert not list(term.state_dict())

    inputs, samples = _inputs(model)
    losses, student, teacher = _pod_maps(model, inputs, samples)
    _assert_no_leftovers(model)
    # 4 stages + the logits (DeepLabV2Head has no pre-logits).
    assert len(student) == len(teacher) == 5

    s_pre, s_post = _by_hand(model.backbone, inputs)
    ref.backbone.eval()
    t_pre, t_post = _by_hand(ref.backbone, inputs)
    for i in range(4):
        # Negative values reach POD: the sums before the ReLU...
        assert (student[i] < 0).any() and (teacher[i] < 0).any(), i
        assert _close(student[i], s_pre[i]), i
        assert _close(teacher[i], t_pre[i]), i
        # ...not the backbone's outputs (the ReLU of the same sums).
        assert not _close(student[i], s_post[i]), i
        assert student[i].requires_grad and not teacher[i].requires_grad

    # The logged loss is PODLoss on the hand-computed maps.
    with torch.no_grad():
        logits = model.decode_head(model.extract_feat(inputs))
        old = ref.decode_head([t_post[3]])
    value = PODLoss(**POD_ARGS)(
        s_pre + [logits],
        t_pre + [old],
        num_classes=C_NEW,
        num_new_classes=C_NEW - C_OLD)
    assert value.item() > 0
    assert losses['distill.loss_pod'].item() == pytest.approx(
        value.item(), rel=1e-4)


def test_pre_relu_gradients_reach_the_last_blocks(r18):
    """POD's gradient flows through the captured sums into the stage's
    last block (as through PLOP's ``x``)."""
    _, _, cfg = r18
    model = MODELS.build(cfg()).train()
    inputs, samples = _inputs(model)
    model.zero_grad()
    model.loss(inputs, samples)['distill.loss_pod'].backward()
    for block in last_blocks(model.backbone):
        assert block.conv2.weight.grad is not None
        assert block.conv2.weight.grad.abs().sum() > 0


def test_pre_relu_under_ef_shares_the_students_capture(r18):
    """EF: the teacher's encoder is the student's; the teacher's maps are
    the student's capture, equal to the teacher's sums by hand."""
    _, ref, cfg = r18
    model = MODELS.build(dict(cfg(), freeze_encoder=True)).train()
    inputs, samples = _inputs(model)
    teacher_runs = []
    handle = model.teacher.backbone.register_forward_hook(
        lambda *_: teacher_runs.append(1))
    _, student, teacher = _pod_maps(model, inputs, samples)
    handle.remove()
    assert teacher_runs == []  # one encoder forward for both
    assert all(s is t for s, t in zip(student[:4], teacher[:4]))
    ref.backbone.eval()
    t_pre, _ = _by_hand(ref.backbone, inputs)
    for i in range(4):
        assert (student[i] < 0).any()
        assert _close(student[i], t_pre[i]), i
        assert not student[i].requires_grad
    _assert_no_leftovers(model)


def test_pre_relu_for_the_teacher_under_cpu_autocast(r18):
    """bf16 autocast: the teacher runs as its low-precision copy, whose
    blocks are captured as well."""
    _, ref, cfg = r18
    model = MODELS.build(cfg()).train()
    inputs, samples = _inputs(model)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses, _, teacher = _pod_maps(model, inputs, samples)
    assert isinstance(model._low_precision, tuple)
    ref.backbone.eval()
    t_pre, _ = _by_hand(ref.backbone, inputs)
    for i in range(4):
        assert (teacher[i] < 0).any()
        # bf16 convolutions: close to the fp32 sums, not equal.
        err = (teacher[i].float() - t_pre[i]).abs().max()
        assert err <= 0.05 * t_pre[i].abs().max(), i
    assert torch.isfinite(losses['distill.loss_pod'])
    for copy_ in (model._low_precision[1].backbone, ):
        for module in copy_.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks


# ------------------------------------------------------------ post-ReLU
def test_post_relu_knob_reads_the_backbone_outputs(r18):
    _, ref, cfg = r18
    model = MODELS.build(cfg(pod_inputs='post_relu')).train()
    assert not model.distill_terms['pod'].reads_pre_act_stages
    inputs, samples = _inputs(model)
    _, student, teacher = _pod_maps(model, inputs, samples)
    stages = model.backbone(inputs)
    ref.backbone.eval()
    _, t_post = _by_hand(ref.backbone, inputs)
    for i in range(4):
        assert torch.equal(student[i], stages[i]), i
        assert _close(teacher[i], t_post[i]), i
        assert student[i].min() >= 0 and teacher[i].min() >= 0


def test_pod_inputs_is_checked_and_set_by_plops_fragment():
    with pytest.raises(ValueError, match="pod_inputs='pre_ReLU'"):
        LocalPODTerm(pod_inputs='pre_ReLU')
    for rel in ('_base_/methods/plop.py',
                'embedded/bench_15-1_plop-overlapped.py',
                'il/plop/voc_15-1_overlapped.py', 'il/plop/ade_100-10.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', rel))
        assert cfg.incremental.distill_terms.pod.pod_inputs == 'pre_relu', rel


def test_non_resnet_backbone_reads_its_outputs(tmp_path):
    """A backbone without mmseg's residual blocks (the toy one): POD reads
    what it returns, whatever pod_inputs says."""
    path = str(tmp_path / 'toy.pth')
    make_teacher(path, C_OLD)
    model = MODELS.build(distill_cfg(path, C_NEW,
                                     distill_pod=dict(POD_ARGS))).train()
    assert model.distill_terms['pod'].reads_pre_act_stages
    data = model.data_preprocessor(make_batch(C_NEW), training=True)
    _, student, _ = _pod_maps(model, data['inputs'], data['data_samples'])
    stages = model.backbone(data['inputs'])
    assert all(torch.equal(s, t) for s, t in zip(student, stages))


# ------------------------------------------------ the capture on its own
def test_capture_on_bottlenecks_and_a_replaced_forward():
    """Bottleneck (three ReLU calls per block): the captured tensors are
    the sums by hand; an instance-level forward (as a CUDA graph's) is
    bypassed for the call and put back."""
    backbone = MODELS.build(
        dict(
            type='ResNetV1c',
            depth=50,
            stem_channels=8,
            base_channels=4,
            out_indices=(1, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1)))
    backbone.eval()  # mmseg's ResNet.train() returns None
    x = torch.randn(2, 3, 32, 32)
    calls = []

    def replaced(inputs):
        calls.append(1)
        return type(backbone).forward(backbone, inputs)

    backbone.forward = replaced
    with torch.no_grad(), PreActivationCapture(backbone) as capture:
        outs = backbone(x)
    assert calls == [] and backbone.__dict__['forward'] is replaced
    pre, post = _by_hand(backbone, x)
    assert len(capture.stages) == 2
    for got, i in zip(capture.stages, (1, 3)):
        assert (got < 0).any()
        assert _close(got, pre[i]), i
    assert all(torch.equal(o, post[i]) for o, i in zip(outs, (1, 3)))
    # Disabled, or not a ResNet: nothing captured, nothing installed.
    with PreActivationCapture(backbone, enabled=False) as off:
        backbone(x)
    assert off.stages is None and calls == [1]
    with PreActivationCapture(nn.Conv2d(3, 3, 1)) as other:
        pass
    assert other.stages is None
    # A backbone that did not run inside the block is an error.
    with pytest.raises(RuntimeError, match='last block'):
        with PreActivationCapture(backbone):
            pass
    for module in backbone.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
