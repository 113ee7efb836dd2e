"""L'_D and L''_D against hand computation (numpy, explicit loops)."""
import math

import numpy as np
import pytest
import torch

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg_incremental.models import FeatureDistillLoss, OutputDistillLoss


def _log_softmax(v: np.ndarray) -> np.ndarray:
    m = v.max()
    return v - m - math.log(np.exp(v - m).sum())


def _hand_output_distill(student, teacher, variant, temperature, label=None):
    """Per-pixel loops over numpy arrays; mask from nearest labels."""
    s, t = student.numpy().astype(np.float64), teacher.numpy().astype(
        np.float64)
    n, c_new, h, w = s.shape
    c_old = t.shape[1]
    total, count = 0.0, 0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                if label is not None:
                    big_h, big_w = label.shape[-2:]
                    lab = int(label[b, big_h * i // h, big_w * j // w])
                    if not 0 <= lab < c_old:
                        continue
                q = np.exp(_log_softmax(t[b, :, i, j] / temperature))
                if variant == 'ilt':
                    log_p = _log_softmax(s[b, :, i, j] / temperature)
                    term = -sum(q[c] * log_p[c] for c in range(c_old))
                else:
                    log_p = _log_softmax(s[b, :c_old, i, j] / temperature)
                    term = -sum(q[c] * log_p[c] for c in range(c_old)) / c_old
                total += term
                count += 1
    return total / max(count, 1), count


@pytest.fixture
def logits():
    gen = torch.Generator().manual_seed(0)
    student = 3 * torch.randn(2, 5, 3, 4, generator=gen)
    teacher = 3 * torch.randn(2, 3, 3, 4, generator=gen)
    return student, teacher


@pytest.mark.parametrize('variant', ['ilt', 'mib'])
@pytest.mark.parametrize('temperature', [1.0, 2.5])
def test_output_distill_no_mask(logits, variant, temperature):
    student, teacher = logits
    loss = OutputDistillLoss(
        variant=variant, temperature=temperature, loss_weight=3.0)
    expected, count = _hand_output_distill(student, teacher, variant,
                                           temperature)
    assert count == 24
    assert loss(student, teacher).item() == pytest.approx(
        3.0 * expected, rel=1e-5)


def test_output_distill_ilt_known_value():
    # One pixel, C_old = 2, C_new = 3, all logits 0: p = 1/3, q = 1/2.
    student = torch.zeros(1, 3, 1, 1)
    teacher = torch.zeros(1, 2, 1, 1)
    ilt = OutputDistillLoss(variant='ilt')(student, teacher)
    mib = OutputDistillLoss(variant='mib')(student, teacher)
    assert ilt.item() == pytest.approx(math.log(3))  # -(2 * 0.5 log 1/3)
    assert mib.item() == pytest.approx(math.log(2) / 2)  # mean over 2


@pytest.mark.parametrize('variant', ['ilt', 'mib'])
def test_output_distill_old_mask_nearest_labels(logits, variant):
    student, teacher = logits  # C_old = 3, C_new = 5, logits 3 x 4
    gen = torch.Generator().manual_seed(3)
    # Labels at twice the resolution, with old (0..2), new (3, 4) and 255.
    label = torch.randint(0, 5, (2, 6, 8), generator=gen)
    label[0, 0:2, :] = 255
    label[1, :, 0:2] = 4
    loss = OutputDistillLoss(
        variant=variant, pixel_mask='old', temperature=0.7)
    expected, count = _hand_output_distill(student, teacher, variant, 0.7,
                                           label.numpy())
    assert 0 < count < 24
    assert loss(student, teacher, label).item() == pytest.approx(
        expected, rel=1e-5)
    # (N, 1, H, W) labels give the same value.
    assert loss(student, teacher, label[:, None]).item() == pytest.approx(
        expected, rel=1e-5)


def test_output_distill_mask_drops_pixels_and_empty_mask():
    student = torch.zeros(1, 3, 1, 2)
    student[0, 2, 0, 1] = 5.0  # a confident new class at pixel (0, 1)
    teacher = torch.zeros(1, 2, 1, 2)
    loss = OutputDistillLoss(pixel_mask='old')
    keep_first = torch.tensor([[[0, 2]]])  # second pixel is a new class
    assert loss(student, teacher,
                keep_first).item() == pytest.approx(math.log(3))
    nothing = torch.tensor([[[255, 2]]])
    out = loss(student.requires_grad_(), teacher, nothing)
    assert out.item() == 0.0
    out.backward()  # still a graph


def test_output_distill_ignore_index_below_c_old():
    """ignore_index need not be >= C_old: pixels with it are dropped."""
    student = torch.zeros(1, 4, 1, 3)
    student[0, 0, 0, 1] = 2.0
    teacher = torch.zeros(1, 3, 1, 3)
    teacher[0, 1, 0, 2] = 1.0
    label = torch.tensor([[[0, 1, 2]]])  # 1 is the ignore label here
    loss = OutputDistillLoss(pixel_mask='old', ignore_index=1)
    # Kept: pixel 0 (p = 1/4 each, q = 1/3) and pixel 2 (p = 1/4 each,
    # q = (1, e, 1) / (2 + e)); each term is -sum_c q_c log(1/4) = log 4.
    assert loss(student, teacher, label).item() == pytest.approx(math.log(4))
    keep_all = OutputDistillLoss(pixel_mask='old')
    with_pixel_1 = keep_all(student, teacher, label)
    e2 = math.exp(2.0)
    p1 = (e2 + 3)
    term1 = -(1 / 3) * (math.log(e2 / p1) + 2 * math.log(1 / p1))
    assert with_pixel_1.item() == pytest.approx((2 * math.log(4) + term1) / 3)
    assert OutputDistillLoss().ignore_index == 255


@pytest.mark.parametrize('variant', ['ilt', 'mib'])
def test_output_distill_at_label_resolution(logits, variant):
    """resolution='labels' (the authors' code): both logits bilinearly
    upsampled to the labels, then the per-pixel loss on full-size labels;
    equal to the logit-resolution loss of explicitly upsampled logits."""
    student, teacher = logits  # 3 x 4 logits
    gen = torch.Generator().manual_seed(5)
    label = torch.randint(0, 5, (2, 6, 8), generator=gen)
    label[0, :2] = 255
    up = dict(size=(6, 8), mode='bilinear', align_corners=False)
    big_s = torch.nn.functional.interpolate(student, **up)
    big_t = torch.nn.functional.interpolate(teacher, **up)
    expected, count = _hand_output_distill(big_s, big_t, variant, 1.0,
                                           label.numpy())
    assert 0 < count < 96
    loss = OutputDistillLoss(
        variant=variant, pixel_mask='old', resolution='labels')
    assert loss(student, teacher, label).item() == pytest.approx(
        expected, rel=1e-5)
    # It differs from the logit-resolution value on these labels.
    coarse = OutputDistillLoss(variant=variant, pixel_mask='old')
    assert coarse(student, teacher, label).item() != pytest.approx(
        expected, rel=1e-3)
    with pytest.raises(ValueError, match='needs seg_label'):
        loss(student, teacher)
    with pytest.raises(ValueError, match='resolution'):
        OutputDistillLoss(resolution='input')


def test_output_distill_fixed_head_sums_all_outputs_masks_by_c_old():
    """A fixed classifier (teacher outputs == student outputs == 3, C_old =
    2): the sum runs over all 3 teacher outputs, the mask keeps labels < 2.
    """
    student = torch.zeros(1, 3, 1, 2)
    student[0, 2, 0, 0] = math.log(2.0)  # p = (1/4, 1/4, 1/2) at pixel 0
    teacher = torch.zeros(1, 3, 1, 2)  # q = 1/3 everywhere
    label = torch.tensor([[[1, 2]]])  # pixel 1 is the new class 2
    loss = OutputDistillLoss(pixel_mask='old')
    got = loss(student, teacher, label, num_old_classes=2)
    expected = -(2 * math.log(0.25) + math.log(0.5)) / 3  # pixel 0 only
    assert got.item() == pytest.approx(expected)
    # Without C_old the mask would keep the new-class pixel too.
    both = (expected + math.log(3)) / 2
    assert loss(student, teacher, label).item() == pytest.approx(both)


def test_output_distill_gradients():
    """d/dz of -sum_{c<C_old} q_c log softmax(z)_c is p_j sum(q) - q_j
    (with q_j = 0 for new classes); the teacher gets none."""
    gen = torch.Generator().manual_seed(5)
    student = torch.randn(1, 4, 1, 1, generator=gen, requires_grad=True)
    teacher = torch.randn(1, 2, 1, 1, generator=gen, requires_grad=True)
    OutputDistillLoss()(student, teacher).backward()
    p = torch.softmax(student.detach()[0, :, 0, 0], 0)
    q = torch.cat(
        [torch.softmax(teacher.detach()[0, :, 0, 0], 0),
         torch.zeros(2)])
    torch.testing.assert_close(student.grad[0, :, 0, 0], p - q)
    assert teacher.grad is None


def test_output_distill_is_numerically_stable():
    student = torch.tensor([[1000.0, -1000.0, 0.0]]).view(1, 3, 1, 1)
    teacher = torch.tensor([[0.0, 0.0]]).view(1, 2, 1, 1)
    out = OutputDistillLoss()(student, teacher)
    assert torch.isfinite(out)
    assert out.item() == pytest.approx(0.5 * 2000.0)


def test_output_distill_registry_and_name():
    loss = MODELS.build(
        dict(type='OutputDistillLoss', variant='mib', loss_weight=100.0))
    assert isinstance(loss, OutputDistillLoss)
    assert loss.loss_name == 'loss_distill_out'
    assert OutputDistillLoss(loss_name='loss_kd').loss_name == 'loss_kd'


@pytest.mark.parametrize('kwargs, match', [
    (dict(variant='lwf'), "variant='lwf'"),
    (dict(pixel_mask='new'), "pixel_mask='new'"),
    (dict(loss_weight=-1.0), 'loss_weight=-1.0'),
    (dict(temperature=0.0), 'temperature=0.0'),
    (dict(loss_name='distill'), "start with 'loss_'"),
])
def test_output_distill_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OutputDistillLoss(**kwargs)


def test_output_distill_bad_inputs():
    loss = OutputDistillLoss(pixel_mask='old')
    with pytest.raises(ValueError, match='needs seg_label'):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match='C_new >= C_old'):
        loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match='C_new >= C_old'):
        loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 3))


def test_feature_distill_against_hand_mse():
    gen = torch.Generator().manual_seed(7)
    student = torch.randn(2, 3, 2, 2, generator=gen, requires_grad=True)
    teacher = torch.randn(2, 3, 2, 2, generator=gen, requires_grad=True)
    s, t = student.detach().numpy(), teacher.detach().numpy()
    total = 0.0
    for idx in np.ndindex(*s.shape):
        total += (float(s[idx]) - float(t[idx]))**2
    loss = MODELS.build(dict(type='FeatureDistillLoss', loss_weight=50.0))
    out = loss(student, teacher)
    assert out.item() == pytest.approx(50.0 * total / s.size, rel=1e-5)
    out.backward()
    assert teacher.grad is None
    torch.testing.assert_close(
        student.grad, 50.0 * 2 * (student - teacher).detach() / s.size)
    assert loss.loss_name == 'loss_distill_feat'


def test_feature_distill_bad_args():
    with pytest.raises(ValueError, match='loss_weight=-2'):
        FeatureDistillLoss(loss_weight=-2)
    with pytest.raises(ValueError, match="start with 'loss_'"):
        FeatureDistillLoss(loss_name='feat')
    with pytest.raises(ValueError, match='same shape'):
        FeatureDistillLoss()(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))
