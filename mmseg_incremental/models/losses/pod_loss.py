"""PLOP's Local POD distillation (Douillard et al., CVPR 2021).

Facts taken from the authors' code, ``arthurdouillard/CVPR2021_PLOP``
(commit 4b4a060); the paper's text was not checked:

- ``train.py``, ``features_distillation``: each (teacher, student) map is
  squared (``prepro='pow'``, the default: ``torch.pow(a, 2)``) and embedded
  by ``_local_pod``; ``normalize`` is forced to ``False`` at the top of the
  function (only a ``pod_options['switch']`` entry with ``'norm'`` turns it
  on, and PLOP's options do not), so the embeddings are **not**
  L2-normalised. The layer's distance is ``torch.frobenius_norm(a - b,
  dim=-1)``: the (non-squared) L2 norm of the difference of the whole
  per-image embedding (all scales and windows concatenated, not one norm
  per window), then ``torch.mean`` over the batch, times the layer's
  factor; the layers' terms are summed and divided by the number of
  layers (``loss / len(list_attentions_a)``), also counting layers whose
  factor is 0.
- ``train.py``, ``_local_pod``: for each scale s, ``k = w // s`` (the
  width; the maps are square in PLOP) and the windows are
  ``x[..., i*k:(i+1)*k, j*k:(j+1)*k]`` for ``i, j < s``; in each window
  ``tensor.mean(dim=3)`` (pool the width: one value per row and channel)
  and ``tensor.mean(dim=2)`` (pool the height: one per column and
  channel), each flattened and concatenated. Here a window is
  ``H // s`` x ``W // s``, the same on square maps; rows/columns beyond
  ``s * (H // s)`` are dropped as in PLOP.
- ``argparser.py``: ``--spp_scales`` defaults to ``[1, 2, 4]``;
  ``--method PLOP`` sets ``pod='local'``, ``pod_factor=0.01``,
  ``pod_logits=True`` and ``pod_options={'switch': {'after':
  {'extra_channels': 'sum', 'factor': 0.0005, 'type': 'local'}}}``: the
  last pair of the list (the logits, see below) gets factor 0.0005 instead
  of 0.01; ``--no_pod_schedule`` is off, so ``use_pod_schedule=True``.
- ``train.py``: with ``use_pod_schedule`` every layer's term is multiplied
  by ``sqrt(nb_current_classes / nb_new_classes)``, where
  ``nb_current_classes`` is the number of classes seen so far, background
  included (``sum(classes)``), and ``nb_new_classes`` the number added at
  this step (``classes[-1]``).
- ``segmentation_module.py`` / ``models/resnet.py``: the list is the four
  ResNet stages' outputs (before their last activation: ``modules/
  residual.py`` l.125-138 returns ``(act, x)``, ``models/resnet.py``
  l.126-139, ``segmentation_module.py`` l.311; ``LocalPODTerm``'s
  ``pod_inputs='pre_relu'`` captures them), the head's output
  (``pre_logits``) and, with ``pod_logits``, the logits at the feature
  resolution (``sem_logits_small``).
- ``train.py``, ``extra_channels='sum'``: when the last pair differs in
  channels (old logits C_old, new logits C_new), the student's logits of
  the new classes are **summed** (logits, not probabilities) into its
  background channel: ``b[:, 0] + b[:, C_old:].sum(1)``, then the pair is
  compared on C_old channels. Only the last pair may differ.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from mmseg.registry import MODELS

from .loss_args import check_loss_args


def _window(h: int, w: int, s: int) -> Tuple[int, int]:
    """The ``(H // s, W // s)`` window of scale s; refused when empty."""
    kh, kw = h // s, w // s
    if kh == 0 or kw == 0:
        raise ValueError(f'local_pod: a {h}x{w} map cannot be cut into '
                         f'{s}x{s} windows; use smaller scales.')
    return kh, kw


def local_pod(x: Tensor, scales: Sequence[int] = (1, 2, 4)) -> Tensor:
    """The Local POD embedding Phi(x) of a feature map, one row per image.

    For each scale s the map is cut into s x s windows of
    ``(H // s) x (W // s)`` positions; each window gives its width-pooled
    (mean over W: one value per row and channel) and height-pooled (mean
    over H: one per column and channel) slices, flattened. No squaring and
    no normalisation here.

    Args:
        x (Tensor): A feature map of shape (N, C, H, W).
        scales (Sequence[int]): The numbers s of windows per side.
            Defaults to (1, 2, 4).

    Returns:
        Tensor: Shape (N, sum_s s**2 * C * (H // s + W // s)).
    """
    n, _, h, w = x.shape
    emb = []
    for s in scales:
        kh, kw = _window(h, w, s)
        for i in range(s):
            for j in range(s):
                win = x[:, :, i * kh:(i + 1) * kh, j * kw:(j + 1) * kw]
                emb.append(win.mean(dim=3).reshape(n, -1))  # pool the width
                emb.append(win.mean(dim=2).reshape(n, -1))  # pool the height
    return torch.cat(emb, dim=1)


def _pooled(x: Tensor, scales: Sequence[int]) -> Tensor:
    """:func:`local_pod`'s values in another order, with two reductions per
    scale instead of two per window (the windows as a view, (N, C, s, kh,
    s, kw)). Distances and norms of embeddings do not depend on the order
    of their entries, so :class:`PODLoss` uses this."""
    n, c, h, w = x.shape
    emb = []
    for s in scales:
        kh, kw = _window(h, w, s)
        win = x[:, :, :s * kh, :s * kw].reshape(n, c, s, kh, s, kw)
        emb.append(win.mean(dim=5).reshape(n, -1))  # pool the width
        emb.append(win.mean(dim=3).reshape(n, -1))  # pool the height
    return torch.cat(emb, dim=1)


def _nested(h: int, w: int, scales: Sequence[int]) -> bool:
    """Whether every window of every scale is a union of windows of the
    finest one (``(H // s) = (S // s) (H // S)`` for S the largest scale,
    the same for W): then all scales pool the same rows and columns and
    :class:`_PODDistance` derives every scale from the finest."""
    top = max(scales)
    kh, kw = _window(h, w, top)
    for s in scales:
        _window(h, w, s)
        if top % s or h // s != (top // s) * kh or w // s != (top // s) * kw:
            return False
    return True


class _PODDistance(torch.autograd.Function):
    """Per image, ``|| Phi(x^2 - y^2) ||_2`` (:func:`local_pod` without
    normalisation) of a student map x and a teacher map y (N, C, H, W)
    whose windows nest (:func:`_nested`), with a hand-written backward.

    Forward: the squared difference once; its sums over the width of
    each finest window (scale S) per row, by strided additions, and over
    the height per column (one reduction); a coarser scale's window sums
    add up finest ones (small tensors); the means of all scales in one
    embedding (:func:`local_pod`'s entries in another order) and its norm.
    Backward: the embedding times ``2 grad / dist`` goes back to the
    finest windows (coarser scales broadcast onto them), then ``x`` times
    it, broadcast over the windows (two full-size passes).
    """

    @staticmethod
    def forward(ctx, stu: Tensor, tea: Tensor, scales: Tuple[int,
                                                             ...]) -> Tensor:
        n, c, h, w = stu.shape
        top = max(scales)
        kh, kw = h // top, w // top
        rows, cols = top * kh, top * kw
        # x^2 - y^2 as the reference rounds it (0 where x == y).
        diff = stu[:, :, :rows, :cols].square()
        diff = diff.sub_(tea[:, :, :rows, :cols].square()).contiguous()
        # Over the innermost kw columns: kw - 1 strided additions (a sum
        # over a short innermost dimension is 3x slower on the CPU).
        cells = diff.view(n, c, rows, top, kw)
        row_sums = cells[..., 0] + cells[..., 1] if kw > 1 else \
            cells[..., 0].clone()
        for k in range(2, kw):
            row_sums += cells[..., k]
        col_sums = diff.view(n, c, top, kh, cols).sum(dim=3)
        del diff, cells
        means = []
        for s in scales:
            r = top // s
            width, height = row_sums, col_sums
            if r > 1:
                width = row_sums.view(n, c, rows, s, r).sum(dim=4)
                height = col_sums.view(n, c, s, r, cols).sum(dim=3)
            means += [
                width.view(n, -1) / (r * kw),
                height.view(n, -1) / (r * kh)
            ]
        emb = torch.cat(means, dim=1)
        dist = torch.linalg.vector_norm(emb, ord=2, dim=1)
        ctx.scales = tuple(scales)
        ctx.save_for_backward(stu, dist, emb)
        return dist

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_dist: Tensor):
        stu, dist, emb = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        scales = ctx.scales
        n, c, h, w = stu.shape
        top = max(scales)
        kh, kw = h // top, w // top
        rows, cols = top * kh, top * kw
        # d dist / d emb = emb / dist (0 where dist is 0); the 2 of
        # d(x^2)/dx folded in.
        coef = torch.where(dist > 0, grad_dist / dist,
                           torch.zeros_like(dist)).mul_(2)
        grad_emb = emb * coef.view(n, 1)
        grad_rows = grad_cols = None
        offset = 0
        parts = []
        for s in scales:
            r = top // s
            size_w, size_h = c * rows * s, c * s * cols
            parts.append((r, grad_emb[:, offset:offset + size_w],
                          grad_emb[:,
                                   offset + size_w:offset + size_w + size_h]))
            offset += size_w + size_h
        # The finest scale first (the sums start from a tensor of their
        # own), the coarser ones broadcast onto its windows.
        for r, width, height in sorted(parts, key=lambda p: p[0]):
            s = top // r
            if grad_rows is None and r == 1:
                grad_rows = width.reshape(n, c, rows, top) / kw
                grad_cols = height.reshape(n, c, top, cols) / kh
                continue
            if grad_rows is None:
                grad_rows = stu.new_zeros(n, c, rows, top)
                grad_cols = stu.new_zeros(n, c, top, cols)
            grad_rows.view(n, c, rows, s, r).add_(
                width.reshape(n, c, rows, s, 1), alpha=1.0 / (r * kw))
            grad_cols.view(n, c, s, r, cols).add_(
                height.reshape(n, c, s, 1, cols), alpha=1.0 / (r * kh))
        # x (rows + cols), each broadcast over its windows' other side.
        x = stu[:, :, :rows, :cols]
        grad = torch.mul(
            x.reshape(n, c, rows, top, kw),
            grad_rows.view(n, c, rows, top, 1)).view(n, c, rows, cols)
        grad.view(n, c, top, kh, cols).addcmul_(
            x.reshape(n, c, top, kh, cols), grad_cols.view(n, c, top, 1, cols))
        if (rows, cols) != (h, w):
            grad = F.pad(grad, (0, w - cols, 0, h - rows))
        return grad, None, None


@MODELS.register_module()
class PODLoss(nn.Module):
    """PLOP's Local POD feature distillation ``L_pod``.

    For layers ``l = 1 .. L`` with student maps x_l and teacher maps x'_l of
    the same shape (N, C_l, H_l, W_l)::

        L_pod = c / L * sum_l w_l * mean_n || Phi(x_l^2) - Phi(x'_l^2) ||_2

    where ``Phi`` is :func:`local_pod` at ``scales`` (optionally followed
    by an L2 normalisation of each image's embedding, ``normalize``), the
    square is element-wise, ``w_l = loss_weight`` except for the last
    layer, which gets ``last_layer_weight`` when given, and
    ``c = sqrt(num_classes / num_new_classes)`` when those are passed to
    :meth:`forward` (PLOP's default POD schedule), else 1. See the module
    docstring for the facts of PLOP's code this follows. PLOP's setting:
    ``loss_weight=0.01, last_layer_weight=0.0005, scales=(1, 2, 4),
    normalize=False`` on the four backbone stages, the decoder's output
    and the logits at the feature resolution.

    If the last student map has more channels than the teacher's (logits
    C_new vs C_old), the student's extra channels are summed into its
    channel 0 first (PLOP's ``extra_channels='sum'``). The teacher's maps
    are detached; the computation runs in float32.

    Implementation (speed, same value up to float rounding): the window
    poolings run as two reductions per scale on a view of the map
    (:func:`_pooled`, the entries of :func:`local_pod` in another order,
    which a norm ignores); without ``normalize`` the embedding being
    linear, ``Phi(x^2) - Phi(x'^2)`` is computed as ``Phi(x^2 - x'^2)``,
    and where the scales' windows nest (every shape of PLOP's (1, 2, 4)
    on maps whose side is a multiple of 4) by :class:`_PODDistance`: the
    coarser scales from the finest windows' sums, the norm without the
    embedding, a hand-written backward (about a quarter off POD's forward
    and backward on the tiny R18's five maps); a pair whose student and
    teacher maps are the same tensor (EF shares the encoder) adds 0
    without being pooled.

    Args:
        loss_weight (float): Factor of every layer (PLOP's ``pod_factor``,
            0.01), >= 0. Defaults to 1.0.
        scales (Sequence[int]): Windows per side at each scale (PLOP's
            ``spp_scales``). Defaults to (1, 2, 4).
        normalize (bool): L2-normalise each image's embedding (all scales
            together) before the distance. PLOP's code forces this off.
            Defaults to False.
        last_layer_weight (float, optional): Factor of the last pair
            instead of ``loss_weight`` (PLOP: 0.0005 on the logits).
            Defaults to None (``loss_weight``).
        loss_name (str): Log key; must start with ``loss_``. Defaults to
            ``'loss_pod'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 scales: Sequence[int] = (1, 2, 4),
                 normalize: bool = False,
                 last_layer_weight: Optional[float] = None,
                 loss_name: str = 'loss_pod') -> None:
        super().__init__()
        check_loss_args('PODLoss', loss_weight, loss_name)
        if last_layer_weight is not None and not last_layer_weight >= 0:
            raise ValueError('PODLoss got last_layer_weight='
                             f'{last_layer_weight!r}; use a weight >= 0 or '
                             'None.')
        scales = tuple(int(s) for s in scales)
        if not scales or min(scales) < 1:
            raise ValueError(f'PODLoss got scales={scales!r}; use positive '
                             'integers, e.g. (1, 2, 4).')
        self.loss_weight = float(loss_weight)
        self.scales = scales
        self.normalize = bool(normalize)
        self.last_layer_weight = (None if last_layer_weight is None else
                                  float(last_layer_weight))
        self._loss_name = loss_name

    def forward(self,
                student_feats: List[Tensor],
                teacher_feats: List[Tensor],
                num_classes: Optional[int] = None,
                num_new_classes: Optional[int] = None) -> Tensor:
        """Compute ``L_pod``.

        Args:
            student_feats (list[Tensor]): The current model's maps, each
                (N, C_l, H_l, W_l).
            teacher_feats (list[Tensor]): The previous model's maps, the
                same shapes, except that the last one may have fewer
                channels (logits).
            num_classes (int, optional): Classes seen so far, background
                included (PLOP's ``nb_current_classes``). Defaults to None.
            num_new_classes (int, optional): Classes added at this step
                (``nb_new_classes``). With ``num_classes``, every layer is
                scaled by ``sqrt(num_classes / num_new_classes)``. Defaults
                to None.

        Returns:
            Tensor: The weighted loss, a scalar.
        """
        if isinstance(student_feats, Tensor):
            student_feats = [student_feats]
        if isinstance(teacher_feats, Tensor):
            teacher_feats = [teacher_feats]
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError('PODLoss needs as many student as teacher maps '
                             f'(at least one); got {len(student_feats)} and '
                             f'{len(teacher_feats)}.')
        if (num_classes is None) != (num_new_classes is None):
            raise ValueError('PODLoss needs both num_classes and '
                             'num_new_classes (or neither).')
        factor = 1.0
        if num_classes is not None:
            if not 0 < num_new_classes <= num_classes:
                raise ValueError(f'PODLoss got num_classes={num_classes}, '
                                 f'num_new_classes={num_new_classes}; need '
                                 '0 < num_new_classes <= num_classes.')
            factor = math.sqrt(num_classes / num_new_classes)

        num_layers = len(student_feats)
        loss = student_feats[0].new_zeros((), dtype=torch.float32)
        for idx, (stu, tea) in enumerate(zip(student_feats, teacher_feats)):
            is_last = idx == num_layers - 1
            weight = self.loss_weight
            if is_last and self.last_layer_weight is not None:
                weight = self.last_layer_weight
            if stu is tea:
                if stu.dim() != 4:
                    raise ValueError('PODLoss expects maps of shape (N, C, '
                                     f'H, W); got {tuple(stu.shape)} at '
                                     f'layer {idx}.')
                continue  # the same map: distance 0
            stu = stu.float()
            tea = tea.detach().float()
            if stu.dim() != 4 or tea.dim() != 4:
                raise ValueError('PODLoss expects maps of shape (N, C, H, W);'
                                 f' got {tuple(stu.shape)} and '
                                 f'{tuple(tea.shape)} at layer {idx}.')
            if stu.shape != tea.shape:
                num_old = tea.shape[1]
                extra_only = (
                    stu.shape[0] == tea.shape[0]
                    and stu.shape[2:] == tea.shape[2:]
                    and stu.shape[1] > num_old)
                if not (is_last and extra_only):
                    raise ValueError(
                        'PODLoss needs student and teacher maps of the same '
                        'shape (only the last student map may have more '
                        f'channels); got {tuple(stu.shape)} and '
                        f'{tuple(tea.shape)} at layer {idx}.')
                # PLOP's extra_channels='sum': new logits join the background.
                bg = stu[:, :1] + stu[:, num_old:].sum(dim=1, keepdim=True)
                stu = torch.cat([bg, stu[:, 1:num_old]], dim=1)
            if self.normalize:
                emb_s = F.normalize(
                    _pooled(stu.pow(2), self.scales), p=2, dim=1)
                emb_t = F.normalize(
                    _pooled(tea.pow(2), self.scales), p=2, dim=1)
                dist = torch.linalg.vector_norm(emb_s - emb_t, ord=2, dim=1)
            elif _nested(stu.shape[2], stu.shape[3], self.scales):
                dist = _PODDistance.apply(stu, tea, self.scales)
            else:
                # Phi is linear: Phi(s^2) - Phi(t^2) = Phi(s^2 - t^2).
                diff = _pooled(stu.pow(2) - tea.pow(2), self.scales)
                dist = torch.linalg.vector_norm(diff, ord=2, dim=1)
            loss = loss + weight * dist.mean()
        return factor * loss / num_layers

    @property
    def loss_name(self) -> str:
        """str: The log key of this term (starts with ``loss_``)."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, scales={self.scales}, '
                f'normalize={self.normalize}, '
                f'last_layer_weight={self.last_layer_weight}')
