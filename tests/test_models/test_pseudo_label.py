"""PLOP's entropy pseudo-labelling against hand computation.

Every expected value below was worked out by hand (numbers in the
comments); the plain-Python ``_hand_value`` only re-derives the entropies
from the probabilities to check the arithmetic of those comments.
"""
import math

import pytest
import torch

from mmseg_incremental.models.utils import (plop_entropy,
                                            plop_entropy_thresholds,
                                            plop_max_entropy,
                                            plop_pseudo_label)


def _hand_value(p, num_classes):
    """PLOP's normalised entropy of one pixel, in plain Python:
    -1/log(C) * mean_c p_c log(p_c + 1e-8) / log(num_classes)."""
    c = len(p)
    mean = sum(x * math.log(x + 1e-8) for x in p) / c
    return -mean / math.log(c + 1e-8) / math.log(num_classes)


def _logits(pixels, h, w):
    """(1, C, h, w) logits whose softmax is the given probabilities
    (pixels in row-major order)."""
    probs = torch.tensor(pixels, dtype=torch.float64).T  # (C, h*w)
    return probs.log().reshape(1, -1, h, w).float()


# Teacher with C_old = 3 outputs (background, old 1, old 2); the step adds
# class 3, so num_classes = 4 and max_entropy = log 4 = 1.386294.
# Normalised entropies (C_old log C_old = 3.295837):
#   A (0.01, 0.98, 0.01): H = 0.111948 -> 0.033967 -> 0.024492, argmax 1
#   B (0.20, 0.30, 0.50): H = 1.029653 -> 0.312418 -> 0.225356, argmax 2
#   C (0.90, 0.05, 0.05): H = 0.394398 -> 0.119666 -> 0.086320, argmax 0
PIX_A = (0.01, 0.98, 0.01)
PIX_B = (0.2, 0.3, 0.5)
PIX_C = (0.9, 0.05, 0.05)
E_A, E_B, E_C = 0.024492, 0.225356, 0.086320


def test_hand_entropies():
    for pix, value in ((PIX_A, E_A), (PIX_B, E_B), (PIX_C, E_C)):
        assert _hand_value(pix, 4) == pytest.approx(value, abs=1e-6)
    probs = torch.softmax(_logits([PIX_A, PIX_B, PIX_C, PIX_C], 2, 2), 1)
    got = plop_entropy(probs) / plop_max_entropy(4)
    assert got.flatten().tolist() == pytest.approx([E_A, E_B, E_C, E_C],
                                                   abs=1e-6)
    # log(4) computed in float32, as PLOP's torch.log(tensor(4.)).
    assert plop_max_entropy(4) == float(torch.tensor(4.).log())


def test_pseudo_label_per_pixel():
    # 1 x 3 x 2 x 2 teacher logits; labels [[0, 0], [3, 255]].
    logits = _logits([PIX_A, PIX_B, PIX_C, PIX_A], 2, 2)
    labels = torch.tensor([[[0, 0], [3, 255]]])
    thresholds = torch.tensor([0.1, 0.03, 0.1, 0.1])
    new, factor = plop_pseudo_label(logits, labels, 3, thresholds,
                                    plop_max_entropy(4))
    # (0, 0): background, argmax 1, 0.024492 < thr[1] = 0.03 -> 1.
    # (0, 1): background, argmax 2, 0.225356 >= thr[2] = 0.1 -> 255.
    # (1, 0): new class 3 -> 3 (the confident teacher is not asked).
    # (1, 1): ignored -> 255 (although A is confident).
    assert new.tolist() == [[[1, 255], [3, 255]]]
    assert new.dtype == torch.long
    assert labels.tolist() == [[[0, 0], [3, 255]]]  # input untouched
    # Adaptive factor: 1 confident of 2 background pixels.
    assert factor.shape == (1, )
    assert factor.item() == pytest.approx(1 / (2 + 1e-6), rel=1e-6)


def test_thresholds_are_per_class():
    logits = _logits([PIX_A, PIX_B, PIX_C, PIX_A], 2, 2)
    labels = torch.tensor([[[0, 0], [0, 255]]])
    # thr[1] = 0.02 < 0.024492: A is no longer confident; thr[2] = 0.3 >
    # 0.225356: B now is; C (argmax 0, 0.086320 < thr[0] = 0.09) is
    # confident background and stays 0.
    thresholds = torch.tensor([0.09, 0.02, 0.3, 0.3])
    new, factor = plop_pseudo_label(logits, labels, 3, thresholds,
                                    plop_max_entropy(4))
    assert new.tolist() == [[[255, 2], [0, 255]]]
    assert factor.item() == pytest.approx(2 / (3 + 1e-6), rel=1e-6)
    # thr[0] = 0.08 < 0.086320: C becomes ignored too.
    thresholds[0] = 0.08
    new, factor = plop_pseudo_label(logits, labels, 3, thresholds,
                                    plop_max_entropy(4))
    assert new.tolist() == [[[255, 2], [255, 255]]]
    assert factor.item() == pytest.approx(1 / (3 + 1e-6), rel=1e-6)


def test_old_labels_count_as_background_and_batch_factor():
    # PLOP's mask is labels < C_old: an old-class label (1) is relabelled
    # like background. Image 0: [[1, 3], [3, 3]] -> A confident -> 1,
    # factor 1/1. Image 1: only new-class and ignored pixels: factor 0.
    logits = torch.cat([
        _logits([PIX_B, PIX_A, PIX_A, PIX_A], 2, 2),
        _logits([PIX_A, PIX_A, PIX_A, PIX_A], 2, 2)
    ])
    labels = torch.tensor([[[1, 3], [3, 3]], [[3, 255], [3, 3]]])
    new, factor = plop_pseudo_label(logits, labels[:, None], 3,
                                    torch.tensor([0.5, 0.5, 0.5]),
                                    plop_max_entropy(4))
    # (0, 0, 0): B, argmax 2, 0.225356 < 0.5 -> 2.
    assert new.tolist() == [[[2, 3], [3, 3]], [[3, 255], [3, 3]]]
    assert factor.tolist() == pytest.approx([1 / (1 + 1e-6), 0.0])


def test_pseudo_label_checks_shapes():
    logits = _logits([PIX_A] * 4, 2, 2)
    with pytest.raises(ValueError, match='outputs'):
        plop_pseudo_label(logits, torch.zeros(1, 2, 2), 2, torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="logits' size"):
        plop_pseudo_label(logits, torch.zeros(1, 4, 4), 3, torch.ones(3), 1.0)
    with pytest.raises(ValueError, match='thresholds'):
        plop_pseudo_label(logits, torch.zeros(1, 2, 2), 3, torch.ones(2), 1.0)


# Thresholds: teacher with C_old = 2 (background, class 1), num_classes =
# 3, max_entropy = log 3; 10 bins (PLOP's --pseudo_nb_bins). Normalised
# entropies (C_old log C_old = 1.386294, then / 1.098612):
#   (0.01, 0.99) 0.036771 bin 0    (0.001, 0.999) 0.005192 bin 0
#   (0.1, 0.9)   0.213449 bin 2    (0.6, 0.4)     0.441899 bin 4 (argmax 0)
#   (0.4, 0.6)   0.441899 bin 4    (argmax 1)
# Background pixels: class 1 -> bins [2, 0, 3]; class 0 -> bin 4 x 3.
BATCH_A = ([(0.01, 0.99), (0.001, 0.999), (0.1, 0.9),
            (0.1, 0.9)], [0, 0, 0, 0])
BATCH_B = ([(0.1, 0.9), (0.6, 0.4), (0.6, 0.4), (0.6, 0.4)], [0, 0, 0, 0])
# Not background: a new-class pixel and an ignored one (both bin 4,
# argmax 1) must not enter class 1's histogram.
BATCH_C = ([(0.4, 0.6), (0.4, 0.6)], [2, 255])


def _batches():
    out = []
    for pixels, labels in (BATCH_A, BATCH_B, BATCH_C):
        w = len(pixels)
        out.append((_logits(pixels, 1, w), torch.tensor([[labels]])))
    return out


def test_threshold_example_bins():
    for pixels, bins in (((0.01, 0.99), 0), ((0.001, 0.999), 0),
                         ((0.1, 0.9), 2), ((0.6, 0.4), 4), ((0.4, 0.6), 4)):
        assert int(_hand_value(pixels, 3) * 10) == bins


def test_thresholds_plop_rule():
    thresholds, max_entropy = plop_entropy_thresholds(
        _batches(), num_classes=3, threshold=0.001, num_bins=10)
    assert max_entropy == float(torch.tensor(3.).log())
    # Class 1: total 5, half 2.5. i=0: 2.5 > 0 + 2; running_sum += 0.
    # i=1: 2.5 > 0 + 0; running_sum += 1. i=2: 1 <= 2.5 <= 1 + 3: stop;
    # median = 0.2 + (2.5 - 1) / 3 * 0.1 = 0.25.
    # Class 0: total 3, half 1.5: no bin stops the loop (running_sum
    # passes 1.5 at i=3); it ends at bin 9 with running_sum = 45 and
    # (1.5 - 45) / hist[9] = -inf: max(-inf, 0.001) = 0.001.
    # Class 2: no pixel: 0 -> 0.001.
    assert thresholds.dtype == torch.float32
    assert thresholds.tolist() == pytest.approx([0.001, 0.25, 0.001])


def test_thresholds_interpolated_rule():
    thresholds, _ = plop_entropy_thresholds(
        _batches(),
        num_classes=3,
        threshold=0.001,
        num_bins=10,
        median_rule='interpolated')
    # Class 1: 2 pixels below bin 2, 3 in it: 0.2 + (2.5 - 2) / 3 * 0.1.
    # Class 0: 3 pixels in bin 4: 0.4 + 1.5 / 3 * 0.1 = 0.45.
    assert thresholds.tolist() == pytest.approx([0.45, 0.2 + 0.5 / 30, 0.001],
                                                rel=1e-6)


def test_thresholds_floor_and_unlabelled_batches():
    # The floor: max(median, threshold). Bare logits: every pixel counts,
    # so class 1 gets BATCH_C's two bin-4 pixels: bins [2, 0, 3, 0, 2],
    # total 7, half 3.5; PLOP's loop: i=2: 1 <= 3.5 <= 4: 0.2 + 2.5/3/10.
    batches = [b[0] for b in _batches()]
    thresholds, _ = plop_entropy_thresholds(
        batches, num_classes=3, threshold=0.3, num_bins=10)
    assert thresholds.tolist() == pytest.approx([0.3, 0.3, 0.3], rel=1e-6)
    thresholds, _ = plop_entropy_thresholds(
        batches, num_classes=3, threshold=0.001, num_bins=10)
    assert thresholds.tolist() == pytest.approx([0.001, 0.2 + 2.5 / 30, 0.001],
                                                rel=1e-6)


def test_default_bins_put_everything_in_bin_zero():
    # With 100 bins and PLOP's double normalisation the values of a
    # 101-output teacher stay below 1 / (101 log 111) = 0.0021 < 0.01: all
    # in bin 0, so every class that has pixels gets 0.01 * half / total =
    # 0.005 (ADE 100-10, step 1).
    gen = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(1, 101, 4, 4, generator=gen)
    thresholds, max_entropy = plop_entropy_thresholds([logits], 111)
    seen = logits.argmax(1).unique()
    assert thresholds.shape == (111, )
    assert thresholds[seen].tolist() == pytest.approx([0.005] * len(seen))
    others = [c for c in range(111) if c not in seen.tolist()]
    assert thresholds[others].tolist() == pytest.approx([0.001] * len(others))
    probs = torch.softmax(logits, 1)
    assert (plop_entropy(probs) /
            max_entropy).max() < 1 / (101 * math.log(111)) + 1e-7


def test_thresholds_then_pseudo_labels():
    # The two functions together on BATCH_A / BATCH_B (PLOP rule):
    # thresholds [0.001, 0.25, 0.001]; class-1 pixels below 0.25 become 1,
    # class-0 pixels (0.441899 >= 0.001) become 255.
    thresholds, max_entropy = plop_entropy_thresholds(
        _batches(), num_classes=3, num_bins=10)
    logits, labels = _batches()[1]
    new, factor = plop_pseudo_label(logits, labels, 2, thresholds, max_entropy)
    assert new.tolist() == [[[1, 255, 255, 255]]]
    assert factor.item() == pytest.approx(1 / (4 + 1e-6), rel=1e-6)


def test_threshold_arguments_checked():
    with pytest.raises(ValueError, match='median_rule'):
        plop_entropy_thresholds([], 3, median_rule='exact')
    with pytest.raises(ValueError, match='outputs'):
        plop_entropy_thresholds([torch.zeros(1, 4, 2, 2)], 3)
