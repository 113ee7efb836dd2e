"""PLOP's entropy-based pseudo-labelling (Douillard et al., CVPR 2021).

Pure functions: the caller runs the teacher M_{k-1}, computes the per-class
thresholds once per step (:func:`plop_entropy_thresholds`, before training)
and relabels every batch (:func:`plop_pseudo_label`).

Facts taken from the authors' code, ``arthurdouillard/CVPR2021_PLOP``
(commit 4b4a060); the paper's text was not checked:

- ``argparser.py``: ``--method PLOP`` sets ``pseudo = "entropy"``,
  ``threshold = 0.001``, ``classif_adaptive_factor = True`` (and
  ``init_balanced = True``); ``--pseudo_nb_bins`` defaults to None (100
  bins for entropies, see below), ``--classif_adaptive_min_factor`` to 0.0,
  ``--step_threshold``, ``--pseudo_soft``, ``--pseudo_ablation`` and
  ``--ce_on_pseudo`` to off. The ADE scripts
  (``scripts/ade/plop_ade_100-*.sh``) pass the same ``--pseudo entropy
  --threshold 0.001 --classif_adaptive_factor``.
- ``train.py``, ``entropy``: the per-pixel "entropy" is
  ``-1 / log(C + 1e-8) * mean_c p_c log(p_c + 1e-8)`` over the C = C_old
  channels of the teacher's softmax: a **mean** over classes (the Shannon
  entropy divided by C) and divided by ``log C``.
- ``train.py``, ``Trainer.before`` / ``find_median(mode="entropy")``: at
  step k >= 1, before training, the teacher runs over the whole training
  loader of the step (its augmentation included) and, for the pixels
  labelled 0 (``labels == 0``), the value ``entropy(p) / max_value`` is put
  into a histogram of ``nb_bins = 100`` bins over [0, 1] (bin
  ``min(int(v * nb_bins), nb_bins - 1)``), one row per teacher argmax
  class; ``max_value = log(nb_current_classes)`` (``torch.log`` of a
  float32), where ``nb_current_classes`` is the number of classes seen at
  step k, background and the new classes included (``sum(classes)``); it
  is returned as ``max_entropy``. The histogram has ``nb_current_classes``
  rows; a class without pixels keeps 0 before the floor below.
- ``train.py``, ``find_median``: each class's median is read off its
  histogram: ``running_sum = 0``; for ``i`` in ``range(nb_bins)``:
  ``lower_border = i / nb_bins``, ``bin_index = int(lower_border *
  nb_bins)``; stop when ``running_sum <= half <= running_sum +
  hist[bin_index]`` (``half = total / 2``), else ``running_sum +=
  lower_border * nb_bins``; then ``median = lower_border + (half -
  running_sum) / hist[bin_index] / nb_bins``. Note that ``running_sum``
  accumulates the bin *index* ``i``, not the bin's count: the rule is the
  usual interpolated histogram median only while the median lies in bin 0
  (where both give ``half / hist[0] / nb_bins``); beyond, it stops at the
  first bin holding about half of the pixels; when no bin does, the loop
  ends at the last bin with ``running_sum = nb_bins (nb_bins - 1) / 2``
  (4950), i.e. a large value that accepts every pixel of the class once it
  has more than ~9,900 pixels (+inf if the last bin is empty), or a
  negative one (then the floor below) for fewer. ``median_rule='plop'``
  reproduces this (float32 tensor arithmetic included),
  ``median_rule='interpolated'`` gives the usual histogram median.
  Finally ``threshold_c = max(median_c, threshold)`` with ``threshold =
  0.001`` (Python's ``max``, so a NaN median stays NaN and accepts no
  pixel).
- Consequence of the two normalisations (``/ (C_old log C_old)`` and ``/
  log nb_current_classes``): the values lie in ``[0, 1 / (C_old log
  nb_current_classes)]``, e.g. below 0.023 on VOC 15-1 step 1 and 0.0022
  on ADE 100-10 step 1, so nearly all fall in bin 0 of 100 and the
  "median" is ``0.01 * half / hist[0]``, in [0.005, 0.01].
- ``train.py``, ``Trainer.train`` (``pseudo_labeling == "entropy"``,
  ``pseudo_soft`` None, ``pseudo_ablation`` None): ``mask_background =
  labels < old_classes`` (old_classes = C_old, background included);
  ``probs = softmax(outputs_old)``, ``pseudo_labels = argmax``;
  ``mask_valid_pseudo = entropy(probs) / max_entropy <
  thresholds[pseudo_labels]``; labels of background pixels that are
  **not** valid become 255 (ignored), those that are valid take the
  teacher's argmax (which may be 0, background). Other labels (new
  classes, 255) are untouched.
- ``train.py``, ``classif_adaptive_factor``: per image, ``num =
  (mask_valid_pseudo & mask_background).sum(dim=(1, 2))``, ``den =
  mask_background.sum(dim=(1, 2))``, ``factor = num / (den + 1e-6)``
  (commit b70fb8f added the epsilon), shaped (N, 1, 1); with
  ``classif_adaptive_min_factor`` 0.0 (falsy) there is no clamp. The
  classification loss is ``CrossEntropyLoss(ignore_index=255,
  reduction='none')`` on the pseudo-labelled targets (PLOP does not set
  ``unce``), multiplied by the factor per image, then ``loss.mean()`` over
  all N x H x W pixels (ignored pixels count as 0 in the mean).
- ``segmentation_module.py``: the teacher's logits are bilinearly upsampled
  to the input size before all of this (labels' resolution).
"""
import math
from typing import Iterable, Optional, Tuple, Union

import torch
from torch import Tensor

from ..losses.logit_pairs import image_chunks, upsample_logits

#: PLOP's defaults (``argparser.py``, ``--method PLOP``; ``find_median``).
PLOP_THRESHOLD = 0.001
PLOP_NUM_BINS = 100
MEDIAN_RULES = ('plop', 'interpolated')
#: Teacher logits alone, or with the labels of the same pixels.
TeacherBatch = Union[Tensor, Tuple[Tensor, Tensor]]


def plop_entropy(probs: Tensor) -> Tensor:
    """PLOP's per-pixel entropy of class probabilities.

    ``-1 / log(C + 1e-8) * mean_c p_c log(p_c + 1e-8)``: the Shannon entropy
    divided by C (a mean over classes, as PLOP's ``entropy``) and by
    ``log C``.

    Args:
        probs (Tensor): Probabilities, shape (N, C, H, W), C >= 2.

    Returns:
        Tensor: Shape (N, H, W).
    """
    factor = _entropy_factor(probs)
    return -factor * torch.mean(probs * torch.log(probs + 1e-8), dim=1)


def _entropy_factor(probs: Tensor) -> float:
    """``1 / log(C + 1e-8)``; refuses C < 2."""
    num = probs.shape[1]
    if num < 2:
        raise ValueError('plop_entropy needs at least 2 classes; got '
                         f'{tuple(probs.shape)}.')
    return 1.0 / math.log(num + 1e-8)


def plop_max_entropy(num_classes: int) -> float:
    """PLOP's ``max_entropy``: ``log(num_classes)`` in float32.

    Args:
        num_classes (int): Classes seen at the current step, background
            and new classes included (PLOP's ``nb_current_classes``).
    """
    if num_classes < 2:
        raise ValueError(f'plop_max_entropy got num_classes={num_classes};'
                         ' need >= 2.')
    return float(torch.log(torch.tensor(float(num_classes))))


def _normalized_entropy(teacher_logits: Tensor, max_entropy: float) -> Tensor:
    """``plop_entropy(softmax(logits)) / max_entropy``, the same operations
    (so the same values) with one full-size temporary instead of four."""
    probs = torch.softmax(teacher_logits.detach().float(), dim=1)
    factor = _entropy_factor(probs)
    # probs * torch.log(probs + 1e-8), in place on one temporary.
    terms = probs.add(1e-8).log_().mul_(probs)
    del probs
    return (-factor * torch.mean(terms, dim=1)) / max_entropy


def first_argmax(logits: Tensor) -> Tensor:
    """``logits.argmax(dim=1)`` of (N, C, H, W) logits (the first of tied
    maxima) as a long tensor (N, H, W). On the CPU by a maximum over the
    channels and one comparison per channel: 4.7 against argmax's 21 ms
    for 8 x 16 x 128² (one thread; argmax is slow across the channels of
    an NCHW tensor); a pixel whose logits hold a NaN gets 0 there (its
    entropy is NaN: :func:`plop_pseudo_label` never relabels it)."""
    if logits.dim() != 4 or logits.shape[1] > 256 or \
            logits.device.type != 'cpu':
        return logits.argmax(dim=1)
    top = logits.amax(dim=1)
    index = torch.zeros_like(top, dtype=torch.uint8)
    for c in range(logits.shape[1] - 1, 0, -1):
        index.masked_fill_(logits[:, c] == top, c)
    index.masked_fill_(logits[:, 0] == top, 0)
    return index.long()


def _entropy_and_argmax(teacher_logits: Tensor, size: Tuple[int, int],
                        align_corners: Optional[bool],
                        max_entropy: float) -> Tuple[Tensor, Tensor]:
    """:func:`_normalized_entropy` and :func:`first_argmax` of the
    teacher's logits at ``size`` (upsampled to it if smaller, with
    ``align_corners``), a few images at a time: the probabilities and
    their log at the labels' size exist for one range of images only."""
    logits = teacher_logits.detach()
    num = logits.shape[0]
    values = torch.empty(
        (num, ) + size, dtype=torch.float32, device=logits.device)
    pseudo = torch.empty(
        (num, ) + size, dtype=torch.long, device=logits.device)
    for part in image_chunks(num):
        chunk = logits[part].float()
        if tuple(chunk.shape[2:]) != size:
            chunk = upsample_logits(chunk, size, bool(align_corners))
        pseudo[part] = first_argmax(chunk)
        values[part] = _normalized_entropy(chunk, max_entropy)
    return values, pseudo


def _split_batch(batch) -> Tuple[Tensor, Optional[Tensor]]:
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError('plop_entropy_thresholds takes teacher logits (N, C, '
                    'H, W) or (teacher_logits, seg_label) pairs; got '
                    f'{type(batch).__name__}.')


def _as_label(seg_label: Tensor,
              logits: Tensor,
              name: str,
              any_size: bool = False) -> Tensor:
    """Labels (N, H, W) as long, checked against the logits' batch and
    (unless ``any_size``: the logits are upsampled to them) size."""
    if seg_label.dim() == 4 and seg_label.shape[1] == 1:
        seg_label = seg_label[:, 0]
    if (seg_label.dim() != 3 or seg_label.shape[0] != logits.shape[0]
            or (seg_label.shape[1:] != logits.shape[2:] and not any_size)):
        raise ValueError(
            f'{name} needs labels (N, H, W) at the teacher logits\' size; got '
            f'logits {tuple(logits.shape)}, labels {tuple(seg_label.shape)} '
            '(upsample the logits to the labels first, as PLOP does).')
    return seg_label.long()


def _plop_median(hist: Tensor, num_bins: int) -> Tensor:
    """``find_median``'s loop for one class (a long histogram row), with
    PLOP's tensor arithmetic (float32; x / 0 gives inf or nan)."""
    half = hist.sum() / 2
    running_sum = 0.
    lower_border = 0.
    bin_index = 0
    for i in range(num_bins):
        lower_border = i / num_bins
        bin_index = int(lower_border * num_bins)  # may be i - 1 (floats)
        if running_sum <= half <= running_sum + hist[bin_index]:
            break
        running_sum += lower_border * num_bins  # the index, not the count
    spread = (half - running_sum) / hist[bin_index]
    return lower_border + spread * (1 / num_bins)


def _interpolated_median(hist: Tensor, num_bins: int) -> float:
    """The usual histogram median, linear inside the median's bin."""
    counts = hist.tolist()
    half = sum(counts) / 2
    cumulative = 0
    for i, count in enumerate(counts):
        if count and cumulative + count >= half:
            return (i + (half - cumulative) / count) / num_bins
        cumulative += count
    return 1.0  # not reached for a non-empty histogram


def plop_entropy_thresholds(batches: Iterable[TeacherBatch],
                            num_classes: int,
                            threshold: float = PLOP_THRESHOLD,
                            num_bins: int = PLOP_NUM_BINS,
                            median_rule: str = 'plop',
                            background_label: int = 0) -> Tuple[Tensor, float]:
    """PLOP's per-class entropy thresholds for one step (``find_median``).

    For every pixel labelled ``background_label`` (0) in the step's
    training data, the teacher's normalised entropy
    ``plop_entropy(softmax(logits)) / log(num_classes)`` goes into a
    ``num_bins`` histogram over [0, 1] of the teacher's argmax class; each
    class's threshold is the histogram median (``median_rule``), floored at
    ``threshold``. Classes with no pixel get ``threshold``.

    Args:
        batches (Iterable): Teacher logits (N, C_old, H, W) at the labels'
            resolution, each alone (every pixel counts) or as a pair
            ``(teacher_logits, seg_label)`` with labels (N, H, W) (only
            pixels labelled ``background_label`` count, as in PLOP).
        num_classes (int): Classes seen at this step, background and new
            classes included (PLOP's ``nb_current_classes``); the number of
            thresholds and the entropy normaliser ``log(num_classes)``.
        threshold (float): The floor of every threshold (PLOP's
            ``--threshold``, 0.001 for PLOP). Defaults to 0.001.
        num_bins (int): Histogram bins (``--pseudo_nb_bins``; PLOP: 100 for
            entropies). Defaults to 100.
        median_rule (str): ``'plop'`` reproduces PLOP's loop exactly (see
            the module docstring: it accumulates bin indices, not counts);
            ``'interpolated'`` is the usual histogram median. Both agree
            when the median lies in bin 0. Defaults to ``'plop'``.
        background_label (int): The label whose pixels are counted.
            Defaults to 0.

    Returns:
        tuple[Tensor, float]: The thresholds (float32, shape
        (num_classes,), on the first batch's device) and ``max_entropy``
        (``log(num_classes)``) to pass to :func:`plop_pseudo_label`.
    """
    if median_rule not in MEDIAN_RULES:
        raise ValueError(f'median_rule={median_rule!r} is unknown; use '
                         f'one of {MEDIAN_RULES}.')
    if num_bins < 1:
        raise ValueError(f'num_bins={num_bins}; need >= 1.')
    max_entropy = plop_max_entropy(num_classes)
    hist = torch.zeros(num_classes, num_bins, dtype=torch.long)
    device = None
    for batch in batches:
        logits, seg_label = _split_batch(batch)
        if logits.dim() != 4:
            raise ValueError('plop_entropy_thresholds expects teacher logits '
                             f'(N, C, H, W); got {tuple(logits.shape)}.')
        if logits.shape[1] > num_classes:
            raise ValueError(f'The teacher has {logits.shape[1]} outputs, '
                             f'more than num_classes={num_classes}.')
        device = logits.device if device is None else device
        values = _normalized_entropy(logits, max_entropy)
        pseudo = logits.detach().float().argmax(dim=1)
        if seg_label is not None:
            keep = _as_label(seg_label, logits,
                             'plop_entropy_thresholds') == background_label
            values, pseudo = values[keep], pseudo[keep]
        rows = pseudo.reshape(-1).cpu()
        cols = (values.reshape(-1) * num_bins).long().clamp(max=num_bins - 1)
        hist.index_put_((rows, cols.cpu()),
                        torch.ones_like(rows),
                        accumulate=True)

    median_of = _plop_median if median_rule == 'plop' else \
        _interpolated_median
    thresholds = torch.zeros(num_classes, dtype=torch.float32)
    for c in range(num_classes):
        if hist[c].sum() <= 0:
            continue
        thresholds[c] = median_of(hist[c], num_bins)
    for c in range(num_classes):
        # Python's max, as PLOP: a NaN median stays NaN.
        thresholds[c] = max(float(thresholds[c]), float(threshold))
    if device is not None:
        thresholds = thresholds.to(device)
    return thresholds, max_entropy


def plop_pseudo_label(
        teacher_logits: Tensor,
        seg_label: Tensor,
        num_old_classes: int,
        thresholds: Tensor,
        max_entropy: float,
        ignore_index: int = 255,
        align_corners: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
    """Relabel background pixels with the teacher's confident predictions.

    A pixel is "background" when its label is below ``num_old_classes``
    (PLOP's ``labels < old_classes``: label 0, or an old class where the
    labels still carry one). For such a pixel with teacher argmax ``c``
    and normalised entropy ``e = plop_entropy(p) / max_entropy``, the new
    label is ``c`` if ``e < thresholds[c]`` (the teacher is confident) and
    ``ignore_index`` otherwise. Pixels of new classes and ignored pixels
    keep their label.

    PLOP's classification adaptive factor is returned too: per image, the
    fraction of background pixels that received a pseudo-label,
    ``num_valid / (num_background + 1e-6)`` (0 for an image without
    background). PLOP multiplies each image's per-pixel cross-entropy
    (``reduction='none'``, 0 at ignored pixels) by it and then averages
    over all N x H x W pixels.

    Args:
        teacher_logits (Tensor): M_{k-1}'s logits, (N, C_old, H, W), at the
            labels' resolution.
        seg_label (Tensor): The step's labels, (N, H, W) or (N, 1, H, W).
        num_old_classes (int): C_old = |S_{k-1}|, background included.
        thresholds (Tensor): Per-class entropy thresholds, at least C_old
            of them (from :func:`plop_entropy_thresholds`).
        max_entropy (float): The entropy normaliser (``log`` of the number
            of classes seen at this step; from
            :func:`plop_entropy_thresholds`).
        ignore_index (int): The label of ignored pixels. Defaults to 255.
        align_corners (bool, optional): Given, the teacher's logits may be
            smaller than the labels: they are bilinearly upsampled to them
            here (``align_corners``, as PLOP does before all of this), a
            few images at a time. Defaults to None (logits at the labels'
            size).

    Returns:
        tuple[Tensor, Tensor]: The new labels (long, shape (N, H, W), a new
        tensor) and the adaptive factor (float32, shape (N,)).
    """
    if teacher_logits.dim() != 4:
        raise ValueError('plop_pseudo_label expects teacher logits (N, C, H, '
                         f'W); got {tuple(teacher_logits.shape)}.')
    num_old = int(num_old_classes)
    if teacher_logits.shape[1] != num_old:
        raise ValueError(f'The teacher has {teacher_logits.shape[1]} outputs '
                         f'but num_old_classes={num_old_classes}.')
    thresholds = torch.as_tensor(
        thresholds, dtype=torch.float32, device=teacher_logits.device)
    if thresholds.dim() != 1 or thresholds.numel() < num_old:
        raise ValueError(f'plop_pseudo_label needs at least {num_old} '
                         'per-class thresholds; got shape '
                         f'{tuple(thresholds.shape)}.')
    labels = _as_label(
        seg_label,
        teacher_logits,
        'plop_pseudo_label',
        any_size=align_corners is not None)
    size = tuple(labels.shape[1:])

    with torch.no_grad():
        values, pseudo = _entropy_and_argmax(teacher_logits, size,
                                             align_corners, max_entropy)
        valid = values < thresholds[pseudo]
        background = (labels < num_old) & (labels != ignore_index)
        # Masks, not boolean indexing: no host sync (nonzero).
        labels = labels.masked_fill(background & ~valid, ignore_index)
        chosen = background & valid
        labels = torch.where(chosen, pseudo, labels)
        num = chosen.float().sum(dim=(1, 2))
        den = background.float().sum(dim=(1, 2))
        factor = num / (den + 1e-6)
    return labels, factor
