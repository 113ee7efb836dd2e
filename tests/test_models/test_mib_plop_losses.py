"""MiB's unbiased CE / KD and PLOP's Local POD against hand computation.

The references below loop over pixels, classes and windows in plain Python
(float64) rather than reusing the modules' vectorised formulas.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg_incremental.models.losses import (PODLoss, UnbiasedCrossEntropyLoss,
                                             UnbiasedDistillLoss, local_pod)


def _softmax(v) -> list:
    m = max(v)
    e = [math.exp(x - m) for x in v]
    return [x / sum(e) for x in e]


# --------------------------------------------------------------------------
# MiB: unbiased cross-entropy
# --------------------------------------------------------------------------


def _hand_unbiased_ce(logits, label, num_old, ignore_index=255):
    z = logits.double().numpy()
    n, _, h, w = z.shape
    total, count = 0.0, 0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                y = int(label[b, i, j])
                if y == ignore_index:
                    continue
                p = _softmax(list(z[b, :, i, j]))
                if y < num_old:  # background or an old class
                    total += -math.log(sum(p[k] for k in range(num_old)))
                else:
                    total += -math.log(p[y])
                count += 1
    return total / count, count


@pytest.mark.parametrize('num_classes,num_old', [(4, 2), (3, 2), (4, 3)])
def test_unbiased_ce_matches_hand(num_classes, num_old):
    gen = torch.Generator().manual_seed(num_classes * 10 + num_old)
    logits = 2 * torch.randn(2, num_classes, 2, 3, generator=gen)
    label = torch.tensor([[[0, 1, num_classes - 1], [255, num_old, 1]],
                          [[255, 255, 0], [num_classes - 1, 0, num_old]]])
    expected, count = _hand_unbiased_ce(logits, label, num_old)
    assert count == 9
    loss = UnbiasedCrossEntropyLoss(loss_weight=2.0)
    got = loss(logits, label, num_old)
    assert got.dim() == 0
    assert got.item() == pytest.approx(2.0 * expected, rel=1e-5)
    # (N, 1, H, W) labels are accepted too.
    assert loss(logits, label[:, None], num_old).item() == pytest.approx(
        2.0 * expected, rel=1e-5)


def test_unbiased_ce_known_value():
    # All logits 0, C = 3 = C_old + 1: p = 1/3 each, background = 2/3.
    logits = torch.zeros(1, 3, 2, 2)
    label = torch.tensor([[[0, 1], [2, 255]]])  # 1 is old -> background
    got = UnbiasedCrossEntropyLoss()(logits, label, 2)
    expected = (2 * math.log(3 / 2) + math.log(3)) / 3
    assert got.item() == pytest.approx(expected)


@pytest.mark.parametrize('num_old', [0, 1])
def test_unbiased_ce_without_old_classes_is_plain_ce(num_old):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 2, 2, generator=gen)
    label = torch.tensor([[[0, 2], [255, 1]]])
    got = UnbiasedCrossEntropyLoss()(logits, label, num_old)
    ref = F.cross_entropy(logits, label, ignore_index=255)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)


def test_unbiased_ce_all_ignored_and_ignore_index():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    out = UnbiasedCrossEntropyLoss()(logits, torch.full((1, 2, 2), 255), 2)
    assert out.item() == 0.0
    out.backward()  # still attached to the graph
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    # Another ignore label: 255 would then be out of range, 7 is dropped.
    z, label = torch.zeros(1, 3, 1, 2), torch.tensor([[[7, 2]]])
    got = UnbiasedCrossEntropyLoss(ignore_index=7)(z, label, 2)
    assert got.item() == pytest.approx(math.log(3))


def test_unbiased_ce_size_mismatch_raises():
    loss = UnbiasedCrossEntropyLoss()
    with pytest.raises(ValueError, match="logits' size"):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 4).long(), 2)
    with pytest.raises(ValueError, match='num_old_classes'):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2).long(), 4)


# --------------------------------------------------------------------------
# MiB: unbiased knowledge distillation
# --------------------------------------------------------------------------


def _hand_unbiased_kd(student, teacher, alpha=1.0, mask=None):
    s, t = student.double().numpy(), teacher.double().numpy()
    n, c_new, h, w = s.shape
    c_old = t.shape[1]
    total = 0.0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                p = _softmax(list(s[b, :, i, j]))
                q = _softmax([alpha * v for v in t[b, :, i, j]])
                # The teacher's background = student's bg or a new class.
                p_bg = p[0] + sum(p[k] for k in range(c_old, c_new))
                term = q[0] * math.log(p_bg)
                for c in range(1, c_old):
                    term += q[c] * math.log(p[c])
                term = -term / c_old
                if mask is not None:
                    term *= float(mask[b, i, j])
                total += term
    return total / (n * h * w)  # all pixels, as MiB


@pytest.mark.parametrize('c_new,c_old', [(5, 3), (3, 2), (3, 3)])
@pytest.mark.parametrize('alpha', [1.0, 2.0])
def test_unbiased_kd_matches_hand(c_new, c_old, alpha):
    gen = torch.Generator().manual_seed(c_new * 10 + c_old)
    student = 2 * torch.randn(2, c_new, 2, 2, generator=gen)
    teacher = 2 * torch.randn(2, c_old, 2, 2, generator=gen)
    loss = UnbiasedDistillLoss(loss_weight=10.0, alpha=alpha)
    expected = _hand_unbiased_kd(student, teacher, alpha)
    assert loss(student, teacher).item() == pytest.approx(
        10.0 * expected, rel=1e-5)


def test_unbiased_kd_known_value():
    # All logits 0, C_new = 3, C_old = 2: q = (1/2, 1/2),
    # p^_bg = 2/3 (bg + the new class), p^_1 = 1/3; divided by C_old = 2.
    got = UnbiasedDistillLoss()(torch.zeros(1, 3, 2, 2),
                                torch.zeros(1, 2, 2, 2))
    expected = -(0.5 * math.log(2 / 3) + 0.5 * math.log(1 / 3)) / 2
    assert got.item() == pytest.approx(expected)


@pytest.mark.parametrize('as_bool', [True, False])
def test_unbiased_kd_mask_keeps_denominator(as_bool):
    gen = torch.Generator().manual_seed(4)
    student = torch.randn(1, 4, 2, 2, generator=gen)
    teacher = torch.randn(1, 3, 2, 2, generator=gen)
    mask = torch.tensor([[[True, False], [False, True]]])
    expected = _hand_unbiased_kd(student, teacher, mask=mask.numpy())
    full = _hand_unbiased_kd(student, teacher)
    got = UnbiasedDistillLoss()(student, teacher,
                                mask if as_bool else mask.float())
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert expected < full  # masked-out pixels add 0, mean over all 4
    with pytest.raises(ValueError, match='mask of shape'):
        UnbiasedDistillLoss()(student, teacher, torch.ones(1, 4, 4))


def test_unbiased_kd_gradient_to_student_only():
    gen = torch.Generator().manual_seed(2)
    student = torch.randn(1, 4, 2, 2, generator=gen, requires_grad=True)
    teacher = torch.randn(1, 3, 2, 2, generator=gen, requires_grad=True)
    UnbiasedDistillLoss()(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='C_new >= C_old'):
        UnbiasedDistillLoss()(teacher.detach(), student.detach())


# --------------------------------------------------------------------------
# PLOP: Local POD
# --------------------------------------------------------------------------


def _hand_pod_embedding(x, scales):
    """x: (C, H, W) numpy; squared, windows, row/column means by loops."""
    c_n, h, w = x.shape
    emb = []
    for s in scales:
        kh, kw = h // s, w // s
        for wi in range(s):
            for wj in range(s):
                for c in range(c_n):
                    for r in range(kh):  # width-pooled: one per row
                        row = [
                            x[c, wi * kh + r, wj * kw + q]**2
                            for q in range(kw)
                        ]
                        emb.append(sum(row) / kw)
                    for q in range(kw):  # height-pooled: one per column
                        col = [
                            x[c, wi * kh + r, wj * kw + q]**2
                            for r in range(kh)
                        ]
                        emb.append(sum(col) / kh)
    return emb


def _hand_pod_distance(stu, tea, scales, normalize=False):
    """Mean over images of the L2 distance of the embeddings."""
    s, t = stu.double().numpy(), tea.double().numpy()
    total = 0.0
    for b in range(s.shape[0]):
        es = _hand_pod_embedding(s[b], scales)
        et = _hand_pod_embedding(t[b], scales)
        if normalize:
            ns = math.sqrt(sum(v * v for v in es))
            nt = math.sqrt(sum(v * v for v in et))
            es = [v / ns for v in es]
            et = [v / nt for v in et]
        total += math.sqrt(sum((a - b)**2 for a, b in zip(es, et)))
    return total / s.shape[0]


def _pod(stu, tea, scales):
    return PODLoss(scales=scales)([stu], [tea]).item()


def test_pod_known_values():
    # C = 1, 2 x 2, teacher 0, student 1 (squared: 1). Scale 1: two row
    # means and two column means, all 1 -> ||(1, 1, 1, 1)|| = 2. Scale 2:
    # four 1 x 1 windows, each one row and one column -> sqrt(8).
    stu, tea = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    assert _pod(stu, tea, (1, )) == pytest.approx(2.0)
    assert _pod(stu, tea, (2, )) == pytest.approx(math.sqrt(8))
    assert _pod(stu, tea, (1, 2)) == pytest.approx(math.sqrt(12))
    # Scale 1 by hand with distinct values: student [[1, 2], [3, 0]],
    # squared [[1, 4], [9, 0]]: rows (2.5, 4.5), columns (5, 2).
    stu = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]]]])
    expected = math.sqrt(2.5**2 + 4.5**2 + 5**2 + 2**2)
    assert _pod(stu, tea, (1, )) == pytest.approx(expected)
    # Scale 2: each 1 x 1 window gives its squared value twice.
    expected = math.sqrt(2 * (1 + 16 + 81 + 0))
    assert _pod(stu, tea, (2, )) == pytest.approx(expected)


@pytest.mark.parametrize('scales', [(1, ), (2, ), (1, 2)])
@pytest.mark.parametrize('size', [(2, 2), (2, 4), (5, 4)])
@pytest.mark.parametrize('normalize', [False, True])
def test_pod_matches_hand(scales, size, normalize):
    gen = torch.Generator().manual_seed(size[0] * 7 + size[1])
    stu = torch.randn(2, 2, *size, generator=gen)
    tea = torch.randn(2, 2, *size, generator=gen)
    expected = _hand_pod_distance(stu, tea, scales, normalize)
    loss = PODLoss(loss_weight=0.5, scales=scales, normalize=normalize)
    assert loss([stu], [tea]).item() == pytest.approx(0.5 * expected, rel=1e-5)


def test_local_pod_embedding_size():
    x = torch.randn(2, 3, 8, 8)
    # sum_s s^2 * C * (H/s + W/s) = 3 * (16 + 4 * 8 + 16 * 4) = 336
    assert local_pod(x).shape == (2, 336)
    with pytest.raises(ValueError, match='cannot be cut'):
        local_pod(torch.randn(1, 1, 2, 2), scales=(4, ))


def test_pod_identical_is_zero_and_grows_with_difference():
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 3, 4, 4, generator=gen) for _ in range(2)]
    stu = [f.clone().requires_grad_() for f in feats]
    loss = PODLoss()
    out = loss(stu, feats)
    assert out.item() == 0.0
    out.backward()
    assert all(torch.isfinite(s.grad).all() for s in stu)
    direction = [torch.randn(f.shape, generator=gen) for f in feats]
    values = [
        loss([f + eps * d for f, d in zip(feats, direction)], feats).item()
        for eps in (0.01, 0.1, 0.5, 1.0)
    ]
    assert 0 < values[0] < values[1] < values[2] < values[3]


def test_pod_layers_weights_and_class_factor():
    gen = torch.Generator().manual_seed(3)
    stu = [torch.randn(1, 2, 4, 4, generator=gen) for _ in range(3)]
    tea = [torch.randn(1, 2, 4, 4, generator=gen) for _ in range(3)]
    d = [_hand_pod_distance(s, t, (1, 2, 4)) for s, t in zip(stu, tea)]
    # Mean over layers (PLOP: sum / number of layers).
    got = PODLoss(loss_weight=0.01)(stu, tea)
    assert got.item() == pytest.approx(0.01 * sum(d) / 3, rel=1e-5)
    # The last layer's own factor (PLOP: 0.0005 on the logits).
    loss = PODLoss(loss_weight=0.01, last_layer_weight=0.0005)
    expected = (0.01 * (d[0] + d[1]) + 0.0005 * d[2]) / 3
    assert loss(stu, tea).item() == pytest.approx(expected, rel=1e-5)
    # PLOP's schedule sqrt(classes so far / new classes), e.g. 15-1 step 1.
    got = loss(stu, tea, num_classes=17, num_new_classes=1)
    assert got.item() == pytest.approx(math.sqrt(17) * expected, rel=1e-5)
    with pytest.raises(ValueError, match='both'):
        loss(stu, tea, num_classes=17)


def test_pod_last_layer_extra_channels_are_summed_into_background():
    gen = torch.Generator().manual_seed(6)
    stu = torch.randn(1, 4, 2, 2, generator=gen)  # logits, C_new = 4
    tea = torch.randn(1, 2, 2, 2, generator=gen)  # C_old = 2
    merged = np.empty((1, 2, 2, 2))
    s = stu.numpy()
    for i in range(2):
        for j in range(2):
            merged[0, 0, i, j] = s[0, 0, i, j] + s[0, 2, i, j] + s[0, 3, i, j]
            merged[0, 1, i, j] = s[0, 1, i, j]
    expected = _hand_pod_distance(torch.from_numpy(merged), tea, (1, 2))
    got = PODLoss(scales=(1, 2))([stu], [tea])
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # Only the last pair may differ in channels.
    with pytest.raises(ValueError, match='same shape'):
        PODLoss()([stu, stu], [tea, tea])


def test_pod_gradient_to_student_only():
    gen = torch.Generator().manual_seed(8)
    stu = torch.randn(1, 2, 4, 4, generator=gen, requires_grad=True)
    tea = torch.randn(1, 2, 4, 4, generator=gen, requires_grad=True)
    PODLoss()([stu], [tea]).backward()
    assert tea.grad is None
    assert stu.grad is not None and stu.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


@pytest.mark.parametrize('cfg,cls', [
    (dict(type='UnbiasedCrossEntropyLoss'), UnbiasedCrossEntropyLoss),
    (dict(type='UnbiasedDistillLoss', loss_weight=10.0), UnbiasedDistillLoss),
    (dict(type='PODLoss', loss_weight=0.01,
          last_layer_weight=0.0005), PODLoss),
])
def test_registry_build(cfg, cls):
    loss = MODELS.build(cfg)
    assert isinstance(loss, cls)
    assert loss.loss_name.startswith('loss_')
    assert loss.loss_weight == cfg.get('loss_weight', 1.0)


def test_defaults_and_bad_arguments():
    assert UnbiasedCrossEntropyLoss().ignore_index == 255
    assert UnbiasedDistillLoss().alpha == 1.0
    pod = PODLoss()
    assert pod.scales == (1, 2, 4) and pod.normalize is False
    with pytest.raises(ValueError, match='loss_weight'):
        UnbiasedDistillLoss(loss_weight=-1)
    with pytest.raises(ValueError, match='scales'):
        PODLoss(scales=(0, 1))
    with pytest.raises(ValueError, match='loss_name'):
        PODLoss(loss_name='pod')
