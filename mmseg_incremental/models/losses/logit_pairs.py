"""What every output-distillation loss does to its (student, teacher) pair.

L'_D (:class:`OutputDistillLoss`) and MiB's KD (:class:`UnbiasedDistillLoss`)
both compare the student's C_new logits with the teacher's C_old, at the
logits' resolution or upsampled to the labels; the shape contract and the
upsampling live here once, with what MiB's two losses share at the labels'
resolution:

* :func:`upsample_logits`: mmseg's bilinear ``resize`` of logits to the
  labels' size. On the CPU, for logits of at most 64 x 64, it runs as two
  matrix products with the interpolation matrices (the same weights; the
  backward is the transposed products): 4.0 instead of 12.4 ms for
  forward and backward of 8 x 17 x 16² -> 128² logits on one thread,
  mostly the backward (``upsample_bilinear2d_backward``'s scatter). Larger
  logits and other devices use ``F.interpolate``.
* :func:`share_label_logits` / :func:`split_softmax`: logits at the
  labels' size that one ``loss()`` call computes once (the segmentor's
  memo, :meth:`~..terms.base.DistillBatch.shared`) carry a slot in which
  MiB's unbiased CE leaves its softmax statistics (:class:`SplitSoftmax`)
  for MiB's unbiased KD: one ``exp`` pass over the logits, one tensor of
  them kept for both backwards; and a pass-through of the logits
  (:func:`pass_through`) through which the KD's gradient reaches the
  CE's backward, which adds its own to it in place: one full-size
  gradient buffer for both losses instead of two (and their sum).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

#: Largest input side for which :func:`upsample_logits` uses matrix
#: products (their cost grows with the input size, ``F.interpolate``'s
#: does not: 17 -> 8 ms at 64² -> 512², 44 -> 31 ms at 97² -> 769²).
MATMUL_MAX_INPUT = 64


def check_logit_pair(loss: str, student_logits: Tensor,
                     teacher_logits: Tensor) -> None:
    """Raise unless the logits are (N, C_new, h, w) and (N, C_old, h, w)
    with C_new >= C_old.

    Args:
        loss (str): The loss's name, for the message.
        student_logits (Tensor): The student's logits.
        teacher_logits (Tensor): The teacher's logits.
    """
    if student_logits.dim() != 4 or teacher_logits.dim() != 4:
        raise ValueError(f'{loss} expects logits of shape (N, C, h, w); got '
                         f'student {tuple(student_logits.shape)}, teacher '
                         f'{tuple(teacher_logits.shape)}.')
    if (student_logits.shape[0] != teacher_logits.shape[0]
            or student_logits.shape[2:] != teacher_logits.shape[2:]
            or student_logits.shape[1] < teacher_logits.shape[1]):
        raise ValueError(
            f'{loss} needs teacher logits (N, C_old, h, w) and student '
            'logits (N, C_new, h, w) with C_new >= C_old; got student '
            f'{tuple(student_logits.shape)}, teacher '
            f'{tuple(teacher_logits.shape)}.')


def upsample_pair(student_logits: Tensor, teacher_logits: Tensor,
                  size: Sequence[int],
                  align_corners: bool) -> Tuple[Tensor, Tensor]:
    """Both logits bilinearly resized to ``size`` (the labels'), as mmseg's
    ``loss_by_feat`` resizes the logits for L_CE."""
    return tuple(
        upsample_logits(logits, size, align_corners)
        for logits in (student_logits, teacher_logits))


def image_chunks(num: int, parts: int = 4) -> List[slice]:
    """Ranges of about ``1 / parts`` of a batch of ``num`` images: a loss
    computes a full-size temporary (the teacher's probabilities at the
    labels' size) for one range at a time (less memory; on the CPU, a
    buffer the heap reuses instead of fresh pages)."""
    step = max(1, -(-num // parts))
    return [slice(i, min(i + step, num)) for i in range(0, num, step)]


# --- bilinear upsampling as two matrix products -----------------------------
#: Interpolation matrices by (out, in, align_corners, dtype, device).
_MATRICES: Dict[tuple, Tensor] = {}


def interpolation_matrix(out_size: int, in_size: int, align_corners: bool,
                         dtype: torch.dtype, device: torch.device) -> Tensor:
    """The (out_size, in_size) matrix of 1-D linear interpolation as
    PyTorch's ``upsample_bilinear2d`` computes it (its source index, its
    clamping at the borders and its two weights per output), in
    ``dtype``'s arithmetic; cached."""
    key = (out_size, in_size, bool(align_corners), dtype, str(device))
    mat = _MATRICES.get(key)
    if mat is not None:
        return mat
    index = torch.arange(out_size, dtype=dtype)
    if out_size == in_size:
        src = index
    elif align_corners:  # (out_size 1: index 0, source 0)
        scale = torch.tensor(in_size - 1, dtype=dtype) / max(out_size - 1, 1)
        src = scale * index
    else:
        scale = torch.tensor(in_size, dtype=dtype) / out_size
        src = (scale * (index + 0.5) - 0.5).clamp(min=0)
    low = src.floor().long().clamp(max=in_size - 1)
    lam = (src - low.to(dtype)).clamp(0, 1)
    high = low + (low < in_size - 1).long()
    mat = torch.zeros(out_size, in_size, dtype=dtype)
    rows = torch.arange(out_size)
    mat.index_put_((rows, low), 1 - lam, accumulate=True)
    mat.index_put_((rows, high), lam, accumulate=True)
    mat = mat.to(device)
    if len(_MATRICES) > 64:
        _MATRICES.clear()
    _MATRICES[key] = mat
    return mat


class _BilinearByMatmul(torch.autograd.Function):
    """``out = A_h @ x @ A_w^T`` over the last two dimensions; the
    backward is ``A_h^T @ grad @ A_w``."""

    @staticmethod
    def forward(ctx, x: Tensor, mat_h: Tensor, mat_w: Tensor) -> Tensor:
        ctx.save_for_backward(mat_h, mat_w)
        return torch.matmul(mat_h, torch.matmul(x, mat_w.t()))

    @staticmethod
    def backward(ctx, grad: Tensor):
        mat_h, mat_w = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.matmul(mat_h.t(), torch.matmul(grad, mat_w))
        return grad_x, None, None


def upsample_logits(logits: Tensor, size: Sequence[int],
                    align_corners: bool) -> Tensor:
    """``F.interpolate(logits, size, mode='bilinear', align_corners)``
    (mmseg's ``resize`` as ``loss_by_feat`` calls it); ``logits`` itself
    when it has that size already.

    On the CPU, for fp32/fp64 logits of at most :data:`MATMUL_MAX_INPUT`
    per side, the same weights are applied as two matrix products (equal
    up to float rounding: the products sum in another order); elsewhere
    ``F.interpolate`` runs.

    Args:
        logits (Tensor): (N, C, h, w).
        size (Sequence[int]): (H, W).
        align_corners (bool): As ``F.interpolate``'s.

    Returns:
        Tensor: (N, C, H, W), contiguous.
    """
    size = tuple(int(s) for s in size)
    if tuple(logits.shape[-2:]) == size:
        return logits
    h, w = logits.shape[-2:]
    if (logits.device.type != 'cpu'
            or logits.dtype not in (torch.float32, torch.float64)
            or max(h, w) > MATMUL_MAX_INPUT or logits.dim() != 4
            or min(h, w) == 0):
        return F.interpolate(
            logits, size, mode='bilinear', align_corners=align_corners)
    mat_h = interpolation_matrix(size[0], h, align_corners, logits.dtype,
                                 logits.device)
    mat_w = interpolation_matrix(size[1], w, align_corners, logits.dtype,
                                 logits.device)
    return _BilinearByMatmul.apply(logits, mat_h, mat_w)


# --- softmax statistics shared by the losses of one step --------------------
class SplitSoftmax(NamedTuple):
    """Softmax statistics of logits ``s`` (N, C, H, W) whose channels are
    split into ``[0, k)`` and ``[k, C)`` (each with its own maximum, so
    that the log-sum-exp of either part is exact even where the other
    dominates).

    ``exp``: ``exp(s - m_a)`` on ``[0, k)`` and ``exp(s - m_b)`` on
    ``[k, C)``, (N, C, H, W); ``m_a``, ``m_b``: the parts' maxima
    (N, 1, H, W; ``m_b`` None when k == C); ``lse_a``, ``lse_b``: the
    parts' log-sum-exps; ``lse``: over all channels. All detached.
    ``version``: ``s._version`` when computed.
    """
    split: int
    exp: Tensor
    m_a: Tensor
    m_b: Optional[Tensor]
    lse_a: Tensor
    lse_b: Optional[Tensor]
    lse: Tensor
    version: int


@torch.no_grad()
def split_softmax(logits: Tensor, split: int) -> SplitSoftmax:
    """:class:`SplitSoftmax` of ``logits`` at ``split`` (1 <= split <= C);
    taken from the logits' slot when a loss of this step left it there
    (:func:`share_label_logits`), else computed (and left there)."""
    slot = _SLOTS.get(logits)
    if slot is not None:
        stats = slot.get(split)
        if stats is not None and stats.version == logits._version:
            return stats
    s = logits.detach()
    num = s.shape[1]
    m_a = s[:, :split].amax(dim=1, keepdim=True)
    e = torch.empty_like(s, memory_format=torch.contiguous_format)
    torch.sub(s[:, :split], m_a, out=e[:, :split])
    m_b = lse_b = None
    if split < num:
        m_b = s[:, split:].amax(dim=1, keepdim=True)
        torch.sub(s[:, split:], m_b, out=e[:, split:])
    e.exp_()
    lse_a = e[:, :split].sum(dim=1, keepdim=True).log_().add_(m_a)
    if split < num:
        lse_b = e[:, split:].sum(dim=1, keepdim=True).log_().add_(m_b)
        lse = torch.logaddexp(lse_a, lse_b)
    else:
        lse = lse_a
    stats = SplitSoftmax(split, e, m_a, m_b, lse_a, lse_b, lse,
                         logits._version)
    if slot is not None:
        slot[split] = stats
    return stats


#: Logits shared within one ``loss()`` call -> {split: SplitSoftmax}; an
#: entry goes with its logits.
_SLOTS = WeakIdKeyDictionary()


def share_label_logits(logits: Tensor) -> Tensor:
    """Give ``logits`` a slot for their softmax statistics, so that the
    losses of one step that read them (MiB's CE, then its KD) compute them
    once (:func:`split_softmax`). The slot lives as long as the logits:
    give one only to logits that live for one ``loss()`` call (the
    segmentor's memo)."""
    if logits not in _SLOTS:
        _SLOTS[logits] = {}
    return logits


#: Attribute by which a loss's backward marks a gradient buffer it made and
#: holds no other reference to (the loss that made a pass-through may
#: then add to it in place).
OWN_GRADIENT = '_fused_loss_own_gradient'


def set_pass_through(logits: Tensor, alias: Tensor) -> None:
    """Record ``alias``, a loss's differentiable pass-through of shared
    ``logits`` (MiB's CE: its backward adds its own gradient in place to
    the one coming through ``alias``), for the next loss of the step
    (:func:`pass_through`). Nothing is recorded for logits without a
    slot."""
    slot = _SLOTS.get(logits)
    if slot is not None:
        slot['pass_through'] = alias


def pass_through(logits: Tensor) -> Tensor:
    """The pass-through recorded for ``logits`` (:func:`set_pass_through`)
    -- the same values, whose gradient goes through the loss that made it,
    so that both gradients fill one buffer -- or ``logits`` itself. Each
    pass-through is handed out once."""
    slot = _SLOTS.get(logits)
    alias = None if slot is None else slot.pop('pass_through', None)
    if alias is None or alias._version != logits._version:
        return logits
    return alias
