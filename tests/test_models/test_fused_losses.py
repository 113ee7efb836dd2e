"""The optimised MiB / PLOP losses against the straightforward code they
replaced (kept below as reference functions, verbatim in substance):
values and gradients on random inputs, in float64 (to ~1e-12) and as the
modules run them (fp32, to 1e-6), with ignored pixels, per-pixel weights,
masks, alpha != 1 and the C_old = 1 / C_new = C_old edge cases; the
hand-written backwards also against finite differences (gradcheck).
"""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg_incremental.models.decode_heads.loss_by_feat import \
    decode_loss_by_feat
from mmseg_incremental.models.losses import (PODLoss, UnbiasedCrossEntropyLoss,
                                             UnbiasedDistillLoss)
from mmseg_incremental.models.losses import logit_pairs
from mmseg_incremental.models.losses.logit_pairs import (MATMUL_MAX_INPUT,
                                                         image_chunks,
                                                         share_label_logits,
                                                         split_softmax,
                                                         upsample_logits)
from mmseg_incremental.models.losses.pod_loss import (_nested, _PODDistance,
                                                      _pooled, local_pod)
from mmseg_incremental.models.losses.unbiased_distill_loss import _UnbiasedKD
from mmseg_incremental.models.terms.base import DistillBatch, TeacherOutputs
from mmseg_incremental.models.utils.pseudo_label import (first_argmax,
                                                         plop_entropy,
                                                         plop_pseudo_label)
from test_models.utils import make_batch, make_teacher, toy_model_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
F64 = torch.float64


# ----------------------------------------------------------------------------
# The reference implementations (the code before the optimisation)
# ----------------------------------------------------------------------------
def ref_unbiased_ce(logits, seg_label, num_old, weight=None, ignore_index=255):
    """UnbiasedCrossEntropyLoss._forward_fp32 as it was."""
    num_old = max(int(num_old), 1)
    den = torch.logsumexp(logits, dim=1, keepdim=True)
    log_bg = torch.logsumexp(logits[:, :num_old], dim=1, keepdim=True)
    log_prob = torch.cat([log_bg, logits[:, num_old:]], dim=1) - den
    seg_label = seg_label.long()
    valid = seg_label != ignore_index
    target = torch.where(seg_label < num_old, torch.zeros_like(seg_label),
                         seg_label - num_old + 1)
    target = torch.where(valid, target, torch.zeros_like(target))
    nll = -log_prob.gather(1, target.unsqueeze(1)).squeeze(1)
    nll = torch.where(valid, nll, torch.zeros_like(nll))
    if weight is not None:
        nll = nll * weight.to(nll.dtype)
    return nll.sum() / valid.sum().clamp(min=1)


def ref_unbiased_kd(student, teacher, mask=None, alpha=1.0):
    """UnbiasedDistillLoss._forward_fp32 as it was (same-size logits)."""
    num_old = teacher.shape[1]
    q = F.softmax(alpha * teacher.detach(), dim=1)
    den = torch.logsumexp(student, dim=1)
    log_bg = student[:, 0]
    if student.shape[1] > num_old:
        log_bg = torch.logaddexp(log_bg,
                                 torch.logsumexp(student[:, num_old:], dim=1))
    inner = q[:, 0] * log_bg - den
    if num_old > 1:
        inner = inner + (q[:, 1:] * student[:, 1:num_old]).sum(1)
    per_pixel = -inner / num_old
    if mask is not None:
        per_pixel = per_pixel * mask.to(per_pixel.dtype)
    return per_pixel.mean()


def ref_up(logits, size, align_corners=False):
    return F.interpolate(
        logits, tuple(size), mode='bilinear', align_corners=align_corners)


def ref_pod(student_feats,
            teacher_feats,
            scales=(1, 2, 4),
            loss_weight=1.0,
            last_layer_weight=None,
            factor=1.0):
    """PODLoss.forward as it was (normalize=False)."""
    loss = 0.0
    num = len(student_feats)
    for idx, (stu, tea) in enumerate(zip(student_feats, teacher_feats)):
        weight = loss_weight
        if idx == num - 1 and last_layer_weight is not None:
            weight = last_layer_weight
        if stu is tea:
            continue
        tea = tea.detach()
        if stu.shape != tea.shape:
            k = tea.shape[1]
            bg = stu[:, :1] + stu[:, k:].sum(dim=1, keepdim=True)
            stu = torch.cat([bg, stu[:, 1:k]], dim=1)
        diff = _pooled(stu.pow(2) - tea.pow(2), scales)
        loss = loss + weight * torch.linalg.vector_norm(
            diff, ord=2, dim=1).mean()
    return factor * loss / num


def ref_normalized_entropy(logits, max_entropy):
    probs = torch.softmax(logits.detach().float(), dim=1)
    return plop_entropy(probs) / max_entropy


def ref_pseudo_label(teacher_logits,
                     seg_label,
                     num_old,
                     thresholds,
                     max_entropy,
                     ignore_index=255):
    """plop_pseudo_label's body as it was."""
    labels = seg_label.long()
    values = ref_normalized_entropy(teacher_logits, max_entropy)
    pseudo = teacher_logits.detach().float().argmax(dim=1)
    valid = values < thresholds[pseudo]
    background = (labels < num_old) & (labels != ignore_index)
    labels = labels.masked_fill(background & ~valid, ignore_index)
    chosen = background & valid
    labels = torch.where(chosen, pseudo, labels)
    num = chosen.float().sum(dim=(1, 2))
    den = background.float().sum(dim=(1, 2))
    return labels, num / (den + 1e-6)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def _labels(gen, n, num_classes, h, w, ignored=0.2):
    label = torch.randint(0, num_classes, (n, h, w), generator=gen)
    drop = torch.rand(n, h, w, generator=gen) < ignored
    return label.masked_fill(drop, 255)


def _logits(gen, shape, dtype=torch.float32, scale=3.0):
    return (scale * torch.randn(shape, generator=gen)).to(dtype)


def _grad(value, tensor):
    return torch.autograd.grad(value, tensor)[0]


def _max_diff(a, b):
    return (a - b).abs().max().item()


# ----------------------------------------------------------------------------
# upsampling as matrix products
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('dtype', [torch.float32, F64])
@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('src,dst', [((16, 16), (128, 128)),
                                     ((7, 5), (33, 21)), ((1, 3), (4, 9)),
                                     ((9, 9), (4, 6))])
def test_upsample_logits_is_bilinear_interpolation(dtype, align_corners, src,
                                                   dst):
    gen = torch.Generator().manual_seed(0)
    x = _logits(gen, (2, 5) + src, dtype).requires_grad_()
    got = upsample_logits(x, dst, align_corners)
    ref = ref_up(x, dst, align_corners)
    assert got.shape == ref.shape and got.is_contiguous()
    tol = 1e-12 if dtype == F64 else 2e-5
    assert _max_diff(got, ref) < tol
    g = torch.randn(ref.shape, generator=gen).to(dtype)
    assert _max_diff(
        torch.autograd.grad(got, x, g)[0],
        torch.autograd.grad(ref, x, g)[0]) < (1e-11 if dtype == F64 else 1e-4)


def test_upsample_logits_same_size_large_and_channels_last():
    gen = torch.Generator().manual_seed(1)
    x = _logits(gen, (2, 3, 8, 8))
    assert upsample_logits(x, (8, 8), False) is x  # nothing to do
    big = _logits(gen, (1, 2, MATMUL_MAX_INPUT + 1, 3))
    assert torch.equal(  # F.interpolate beyond the matmul's range
        upsample_logits(big, (130, 6), False), ref_up(big, (130, 6)))
    nhwc = x.contiguous(memory_format=torch.channels_last)
    assert _max_diff(
        upsample_logits(nhwc, (64, 64), False), ref_up(x, (64, 64))) < 2e-5
    torch.autograd.gradcheck(
        lambda t: upsample_logits(t, (5, 7), False),
        torch.randn(1, 2, 3, 4, dtype=F64, requires_grad=True))


# ----------------------------------------------------------------------------
# MiB's unbiased cross-entropy
# ----------------------------------------------------------------------------
CE_CASES = [(17, 16), (6, 3), (5, 1), (5, 0), (4, 4)]


@pytest.mark.parametrize('num_classes,num_old', CE_CASES)
@pytest.mark.parametrize('weighted', [False, True])
def test_unbiased_ce_equals_reference_fp64(num_classes, num_old, weighted):
    gen = torch.Generator().manual_seed(num_classes * 7 + num_old)
    x = _logits(gen, (3, num_classes, 6, 7), F64).requires_grad_()
    label = _labels(gen, 3, num_classes, 6, 7)
    weight = torch.rand(3, 6, 7, generator=gen, dtype=F64) \
        if weighted else None
    loss = UnbiasedCrossEntropyLoss(loss_weight=1.0)
    got = loss._forward_fp32(x, label, max(num_old, 1), weight, 255)
    ref = ref_unbiased_ce(x, label, num_old, weight)
    assert abs(got.item() - ref.item()) < 1e-12
    assert _max_diff(_grad(got, x), _grad(ref, x)) < 1e-14


@pytest.mark.parametrize('num_classes,num_old', CE_CASES)
def test_unbiased_ce_equals_reference_fp32(num_classes, num_old):
    gen = torch.Generator().manual_seed(num_classes + num_old)
    x = _logits(gen, (4, num_classes, 32, 32)).requires_grad_()
    label = _labels(gen, 4, num_classes, 32, 32)
    weight = torch.rand(4, 32, 32, generator=gen)
    got = UnbiasedCrossEntropyLoss(loss_weight=2.0)(
        x, label, num_old, weight=weight)
    ref = 2.0 * ref_unbiased_ce(x, label, num_old, weight)
    assert abs(got.item() - ref.item()) < 1e-6
    assert _max_diff(_grad(got, x), _grad(ref, x)) < 1e-6


def test_unbiased_ce_gradcheck_and_no_valid_pixel():
    gen = torch.Generator().manual_seed(3)
    x = _logits(gen, (2, 5, 3, 3), F64).requires_grad_()
    label = _labels(gen, 2, 5, 3, 3)
    weight = torch.rand(2, 3, 3, generator=gen, dtype=F64)
    for num_old in (1, 2, 5):
        torch.autograd.gradcheck(
            lambda t: UnbiasedCrossEntropyLoss()._forward_fp32(
                t, label, num_old, weight, 255), x)
    ignored = torch.full((2, 3, 3), 255)
    value = UnbiasedCrossEntropyLoss()(x.float(), ignored, 2)
    assert value.item() == 0.0 and value.requires_grad
    assert torch.equal(_grad(value, x), torch.zeros_like(x))


# ----------------------------------------------------------------------------
# MiB's unbiased knowledge distillation
# ----------------------------------------------------------------------------
KD_CASES = [(17, 16), (6, 3), (5, 1), (4, 4)]


@pytest.mark.parametrize('c_new,c_old', KD_CASES)
@pytest.mark.parametrize('alpha', [1.0, 2.5])
@pytest.mark.parametrize('mask', [None, 'bool', 'float'])
def test_unbiased_kd_equals_reference_fp64(c_new, c_old, alpha, mask):
    gen = torch.Generator().manual_seed(c_new * 11 + c_old)
    # 9 images: chunks of 3 (the teacher's q a few images at a time).
    s = _logits(gen, (9, c_new, 5, 6), F64).requires_grad_()
    t = _logits(gen, (9, c_old, 5, 6), F64)
    m = torch.rand(9, 5, 6, generator=gen) > 0.3
    m = None if mask is None else (m if mask == 'bool' else m.to(F64))
    got = UnbiasedDistillLoss(alpha=alpha)._forward_fp32(s, t, m)
    ref = ref_unbiased_kd(s, t, m, alpha)
    assert abs(got.item() - ref.item()) < 1e-12
    assert _max_diff(_grad(got, s), _grad(ref, s)) < 1e-14


@pytest.mark.parametrize('c_new,c_old', KD_CASES)
@pytest.mark.parametrize('align_corners', [False, True])
def test_unbiased_kd_at_labels_equals_reference_fp32(c_new, c_old,
                                                     align_corners):
    """Both logits upsampled to the labels (MiB), also when the student's
    come upsampled already (the segmentor's shared label logits)."""
    gen = torch.Generator().manual_seed(c_new + c_old)
    s = _logits(gen, (8, c_new, 16, 16)).requires_grad_()
    t = _logits(gen, (8, c_old, 16, 16))
    label = torch.zeros(8, 1, 128, 128, dtype=torch.long)
    loss = UnbiasedDistillLoss(
        loss_weight=10.0, alpha=2.0, align_corners=align_corners)
    ref = 10.0 * ref_unbiased_kd(
        ref_up(s, (128, 128), align_corners),
        ref_up(t, (128, 128), align_corners),
        alpha=2.0)
    ref_grad = _grad(ref, s)
    for student in (s, upsample_logits(s, (128, 128), align_corners)):
        got = loss(student, t, seg_label=label)
        assert abs(got.item() - ref.item()) < 1e-6 * 10
        assert _max_diff(_grad(got, s), ref_grad) < 1e-6


def test_unbiased_kd_gradcheck_and_chunks():
    gen = torch.Generator().manual_seed(5)
    s = _logits(gen, (5, 6, 3, 3), F64).requires_grad_()
    t = _logits(gen, (5, 3, 2, 2), F64)  # upsampled inside, per chunk
    m = (torch.rand(5, 3, 3, generator=gen) > 0.5).to(F64)
    torch.autograd.gradcheck(
        lambda x: _UnbiasedKD.apply(x, t, m, 1.5, False, split_softmax(x, 3)),
        s)
    assert image_chunks(8) == [
        slice(0, 2), slice(2, 4),
        slice(4, 6), slice(6, 8)
    ]
    assert image_chunks(1) == [slice(0, 1)]
    assert sum(c.stop - c.start for c in image_chunks(9)) == 9


def test_unbiased_losses_on_channels_last_logits():
    """NHWC logits (F.interpolate keeps a channels_last input's layout on
    a GPU): the same values and gradients."""
    gen = torch.Generator().manual_seed(12)
    s = _logits(gen, (5, 6, 16, 16)).requires_grad_()
    t = _logits(gen, (5, 4, 16, 16))
    label = _labels(gen, 5, 6, 16, 16)
    nhwc = s.detach().contiguous(
        memory_format=torch.channels_last).requires_grad_()
    t_nhwc = t.contiguous(memory_format=torch.channels_last)
    for fn in (lambda x, y: UnbiasedCrossEntropyLoss()
               (x, label, 4), lambda x, y: UnbiasedDistillLoss(alpha=2.0)
               (x, y)):
        a, b = fn(s, t), fn(nhwc, t_nhwc)
        assert abs(a.item() - b.item()) < 1e-6
        assert _max_diff(_grad(a, s), _grad(b, nhwc)) < 1e-7


# ----------------------------------------------------------------------------
# The CE and the KD share the logits' softmax statistics
# ----------------------------------------------------------------------------
def test_ce_and_kd_share_one_softmax_of_shared_logits(monkeypatch):
    gen = torch.Generator().manual_seed(6)
    low = _logits(gen, (4, 6, 8, 8)).requires_grad_()
    t = _logits(gen, (4, 4, 8, 8))
    label = _labels(gen, 4, 6, 32, 32)
    exps = []
    original = torch.Tensor.exp_

    def counting_exp(tensor):
        if tensor.dim() == 4 and tensor.shape[1] == 6:
            exps.append(tensor.shape)
        return original(tensor)

    monkeypatch.setattr(torch.Tensor, 'exp_', counting_exp)
    shared = share_label_logits(upsample_logits(low, (32, 32), False))
    ce = UnbiasedCrossEntropyLoss()(shared, label, 4)
    kd = UnbiasedDistillLoss(loss_weight=10.0)(shared, t, seg_label=label)
    assert len(exps) == 1  # the student's exp pass, once for both
    (ce + kd).backward()
    got = low.grad.clone()
    low.grad = None
    ref_s = ref_up(low, (32, 32))
    ref = ref_unbiased_ce(
        ref_s, label, 4) + 10.0 * ref_unbiased_kd(ref_s, ref_up(t, (32, 32)))
    ref.backward()
    assert abs((ce + kd).item() - ref.item()) < 1e-5
    assert _max_diff(got, low.grad) < 1e-6
    # Changed in place: the statistics are computed again.
    with torch.no_grad():
        shared.add_(1.0)
    assert split_softmax(shared, 4).version == shared._version


@pytest.mark.parametrize('backprop', ['both', 'ce', 'kd', 'twice'])
def test_kd_gradient_goes_through_the_ce(backprop, monkeypatch):
    """On shared logits the KD reads them through the CE's pass-through:
    one full-size gradient buffer for both losses, the same gradients
    whichever of the losses is back-propagated (also twice, with
    retain_graph)."""
    gen = torch.Generator().manual_seed(11)
    low = _logits(gen, (4, 6, 8, 8)).requires_grad_()
    t = _logits(gen, (4, 4, 8, 8))
    label = _labels(gen, 4, 6, 32, 32)
    shared = share_label_logits(upsample_logits(low, (32, 32), False))
    ce = UnbiasedCrossEntropyLoss()(shared, label, 4)
    kd = UnbiasedDistillLoss(loss_weight=10.0)(shared, t, seg_label=label)
    ref_s = ref_up(low, (32, 32))
    ref_ce = ref_unbiased_ce(ref_s, label, 4)
    ref_kd = 10.0 * ref_unbiased_kd(ref_s, ref_up(t, (32, 32)))
    buffers = []
    original = torch.empty_like

    def counting(tensor, *args, **kwargs):
        if tensor.shape == shared.shape:
            buffers.append(tensor.shape)
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(torch, 'empty_like', counting)
    value, ref = dict(
        both=(ce + kd, ref_ce + ref_kd),
        twice=(ce + kd, ref_ce + ref_kd),
        ce=(ce, ref_ce),
        kd=(kd, ref_kd))[backprop]
    got = torch.autograd.grad(value, low, retain_graph=backprop == 'twice')[0]
    assert len(buffers) == 1
    if backprop == 'twice':
        assert torch.equal(torch.autograd.grad(value, low)[0], got)
    assert _max_diff(got, torch.autograd.grad(ref, low)[0]) < 1e-6


def test_split_softmax_parts_are_exact():
    gen = torch.Generator().manual_seed(7)
    x = _logits(gen, (2, 7, 3, 3), F64)
    x[0, 5:, 0, 0] = 200.0  # a part far above the other
    for k in (1, 3, 7):
        st = split_softmax(x, k)
        assert torch.allclose(
            st.lse, torch.logsumexp(x, 1, keepdim=True), atol=1e-12)
        assert torch.allclose(
            st.lse_a, torch.logsumexp(x[:, :k], 1, keepdim=True), atol=1e-12)
        if k < 7:
            assert torch.allclose(
                st.lse_b,
                torch.logsumexp(x[:, k:], 1, keepdim=True),
                atol=1e-12)
        else:
            assert st.lse_b is None and st.m_b is None
    assert logit_pairs._SLOTS.get(x) is None  # not shared: no slot


# ----------------------------------------------------------------------------
# PLOP's Local POD
# ----------------------------------------------------------------------------
POD_SHAPES = [((2, 4, 32, 32), (1, 2, 4)), ((3, 8, 16, 16), (1, 2, 4)),
              ((2, 3, 24, 16), (1, 2, 4)), ((2, 3, 18, 19), (4, )),
              ((2, 3, 33, 33), (2, 4)), ((2, 3, 12, 12), (1, 3))]


@pytest.mark.parametrize('shape,scales', POD_SHAPES)
def test_pod_distance_equals_reference_fp64(shape, scales):
    assert _nested(shape[2], shape[3], scales)
    gen = torch.Generator().manual_seed(shape[1])
    s = _logits(gen, shape, F64, 1.0).requires_grad_()
    t = _logits(gen, shape, F64, 1.0)
    got = _PODDistance.apply(s, t, scales)
    ref = torch.linalg.vector_norm(
        local_pod(s.pow(2), scales) - local_pod(t.pow(2), scales), dim=1)
    assert _max_diff(got, ref) < 1e-12
    g = torch.rand(shape[0], generator=gen, dtype=F64)
    assert _max_diff(
        torch.autograd.grad(got, s, g)[0],
        torch.autograd.grad(ref, s, g)[0]) < 1e-14
    small = _logits(gen, (1, 2) + shape[2:], F64, 1.0).requires_grad_()
    other = _logits(gen, (1, 2) + shape[2:], F64, 1.0)
    torch.autograd.gradcheck(lambda x: _PODDistance.apply(x, other, scales),
                             small)


def test_pod_loss_equals_reference_fp32():
    """PLOP's setting on the tiny R18's maps (stages, logits), plus maps
    whose windows do not nest (the previous code path)."""
    gen = torch.Generator().manual_seed(8)
    shapes = [(8, 16, 32, 32), (8, 32, 16, 16), (8, 128, 16, 16),
              (2, 3, 17, 17), (2, 5, 13, 16), (8, 17, 16, 16)]
    stu = [_logits(gen, s, scale=1.0).requires_grad_() for s in shapes]
    tea = [_logits(gen, s, scale=1.0) for s in shapes[:-1]]
    tea.append(_logits(gen, (8, 16, 16, 16), scale=1.0))
    loss = PODLoss(loss_weight=0.01, last_layer_weight=0.0005)
    got = loss(stu, tea, num_classes=17, num_new_classes=1)
    ref = ref_pod(
        stu,
        tea,
        loss_weight=0.01,
        last_layer_weight=0.0005,
        factor=math.sqrt(17))
    assert abs(got.item() - ref.item()) < 1e-6
    ref_grads = torch.autograd.grad(ref, stu)
    for a, b in zip(torch.autograd.grad(got, stu), ref_grads):
        assert _max_diff(a, b) < 1e-8
    # NHWC maps (ChannelsLastHook): the same values.
    nhwc = [
        x.detach().contiguous(
            memory_format=torch.channels_last).requires_grad_() for x in stu
    ]
    again = loss(
        nhwc, [t.contiguous(memory_format=torch.channels_last) for t in tea],
        num_classes=17,
        num_new_classes=1)
    assert abs(again.item() - got.item()) < 1e-6
    for a, b in zip(torch.autograd.grad(again, nhwc), ref_grads):
        assert _max_diff(a, b) < 1e-8
    same = [t.clone().requires_grad_() for t in tea[:3]]
    zero = loss(same, tea[:3])
    assert zero.item() == 0.0  # identical maps: exactly 0
    zero.backward()
    assert all(torch.equal(x.grad, torch.zeros_like(x)) for x in same)


# ----------------------------------------------------------------------------
# PLOP's pseudo-labels
# ----------------------------------------------------------------------------
def test_first_argmax_is_argmax_with_ties():
    gen = torch.Generator().manual_seed(9)
    x = torch.randint(0, 4, (3, 16, 9, 9), generator=gen).float()
    assert torch.equal(first_argmax(x), x.argmax(dim=1))  # many ties
    y = torch.randn(8, 16, 32, 32, generator=gen)
    assert torch.equal(first_argmax(y), y.argmax(dim=1))


def test_pseudo_labels_equal_reference():
    from mmseg_incremental.models.utils.pseudo_label import \
        _normalized_entropy
    gen = torch.Generator().manual_seed(10)
    teacher = _logits(gen, (4, 16, 64, 64), scale=6.0)
    label = _labels(gen, 4, 17, 64, 64)
    label[:, :20] = 0  # plenty of background
    values = _normalized_entropy(teacher, math.log(17))
    assert torch.equal(values, ref_normalized_entropy(teacher, math.log(17)))
    thresholds = torch.quantile(values[:, ::4, ::4].flatten(),
                                0.5) * torch.ones(17)
    got = plop_pseudo_label(teacher, label, 16, thresholds, math.log(17))
    ref = ref_pseudo_label(teacher, label, 16, thresholds, math.log(17))
    assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    assert 0 < got[1].mean() < 1
    # Logits at their own size, upsampled inside a few images at a time.
    low = _logits(gen, (5, 16, 8, 8), scale=6.0)
    label = _labels(gen, 5, 17, 64, 64)
    label[:, :20] = 0
    for align_corners in (False, True):
        got = plop_pseudo_label(
            low,
            label,
            16,
            thresholds,
            math.log(17),
            align_corners=align_corners)
        ref = ref_pseudo_label(
            ref_up(low, (64, 64), align_corners), label, 16, thresholds,
            math.log(17))
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    with pytest.raises(ValueError, match='labels'):
        plop_pseudo_label(low, label, 16, thresholds, math.log(17))


# ----------------------------------------------------------------------------
# The segmentor: one upsampling shared by the decode loss and the terms
# ----------------------------------------------------------------------------
def _incremental(path, fragment, num_classes):
    from mmengine.config import Config
    cfg = toy_model_cfg(num_classes)
    incremental = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/methods', fragment)).incremental
    cfg.update(
        type='IncrementalEncoderDecoder',
        teacher_checkpoint=path,
        **incremental.to_dict())
    return MODELS.build(cfg).train()


def _step_grads(model, losses):
    total = sum(v for k, v in losses.items() if 'loss' in k)
    params = [p for p in model.parameters() if p.requires_grad]
    return total, torch.autograd.grad(total, params)


def test_mib_step_equals_reference(tmp_path):
    """MiB's losses and every parameter's gradient, against the previous
    computation (the student's logits upsampled twice by F.interpolate,
    the reference CE and KD)."""
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = _incremental(path, 'mib.py', 5)
    data = model.data_preprocessor(make_batch(5, batch_size=5, seed=3), True)
    inputs, samples = data['inputs'], data['data_samples']
    losses = model.loss(inputs, samples)
    total, grads = _step_grads(model, losses)

    label = torch.stack([s.gt_sem_seg.data for s in samples])[:, 0]
    logits = model.decode_head(model.extract_feat(inputs))
    with torch.no_grad():
        teacher = model.teacher.decode_head(model.teacher.extract_feat(inputs))
    size = label.shape[-2:]
    ce = ref_unbiased_ce(ref_up(logits, size), label, 3)
    kd = 10.0 * ref_unbiased_kd(ref_up(logits, size), ref_up(teacher, size))
    assert abs(losses['decode.loss_unbiased_ce'].item() - ce.item()) < 1e-6
    assert abs(losses['distill.loss_unbiased_kd'].item() - kd.item()) < 1e-6
    _, ref_grads = _step_grads(model, dict(loss_ce=ce, loss_kd=kd))
    assert max(_max_diff(a, b) for a, b in zip(grads, ref_grads)) < 1e-6


def test_plop_decode_loss_equals_reference(tmp_path):
    """PLOP's pseudo-labelled decode loss (teacher and student logits
    upsampled by matrix products, the shared label logits) against the
    previous computation."""
    from mmseg_incremental.models.terms import PseudoLabelTerm
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = _incremental(path, 'plop.py', 5)
    data = model.data_preprocessor(make_batch(5, batch_size=3, seed=5), True)
    inputs, samples = data['inputs'], data['data_samples']
    term = model.terms_of_type(PseudoLabelTerm)[0]
    term.fit_thresholds(model, [(inputs, samples)])
    losses = model.loss(inputs, samples)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(losses['decode.loss_ce'], params)

    head = model.decode_head
    label = torch.stack([s.gt_sem_seg.data for s in samples])[:, 0]
    feats = model.extract_feat(inputs)
    with torch.no_grad():
        teacher = model.teacher.decode_head(model.teacher.extract_feat(inputs))
    thresholds, max_entropy = term._fit
    labels, factor = ref_pseudo_label(
        ref_up(teacher, label.shape[-2:]), label, 3, thresholds, max_entropy)
    ref = decode_loss_by_feat(head, head(feats), labels,
                              factor[:, None, None].expand(labels.shape))
    assert abs(losses['decode.loss_ce'].item() - ref['loss_ce'].item()) < 1e-6
    assert losses['decode.pseudo_factor'].item() == pytest.approx(
        factor.mean().item(), abs=1e-7)
    ref_grads = torch.autograd.grad(ref['loss_ce'], params)
    assert max(_max_diff(a, b) for a, b in zip(grads, ref_grads)) < 1e-6


def test_shared_memo_is_per_call():
    batch = DistillBatch(None, [], [], [], torch.zeros(1), None,
                         TeacherOutputs(None, None), {})
    calls = []
    assert batch.shared('k', lambda: calls.append(1) or 7) == 7
    assert batch.shared('k', lambda: calls.append(1) or 8) == 7
    assert calls == [1]
    bare = batch._replace(memo=None)
    assert bare.shared('k', lambda: 9) == 9
