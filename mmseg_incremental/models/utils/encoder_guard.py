"""EF's guard: whether the student's frozen encoder provably computes the
teacher's features, re-checked only when a tensor was written."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn


def same_state(a: nn.Module, b: nn.Module) -> bool:
    """Whether two modules hold bit-identical parameters and buffers (one
    device sync for all tensors)."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(
            sa[k].dtype != sb[k].dtype or sa[k].shape != sb[k].shape
            or sa[k].device != sb[k].device for k in sa):
        return False
    if not sa:
        return True
    return bool(torch.stack([(sa[k] == sb[k]).all() for k in sa]).all().item())


def tensor_dicts(modules: Sequence[nn.Module]) -> List[dict]:
    """The ``_parameters`` and ``_buffers`` dicts of every submodule of
    ``modules``: walked once (``modules()`` recursion was ~40 % of an EF
    step's Python time), read by :func:`write_stamp` at every step."""
    return [
        d for root in modules for m in root.modules()
        for d in (m._parameters, m._buffers) if d
    ]


def write_stamp(dicts: Sequence[dict]) -> tuple:
    """Identity, storage and version counter of every parameter and buffer
    in ``dicts`` (:func:`tensor_dicts`).

    Any in-place write (``copy_`` in ``load_state_dict``, an optimizer step,
    a hook's edit) bumps a tensor's version counter; replacing a tensor or
    its ``.data`` changes its identity or storage (a dict holds the module's
    current tensors). Equal stamps therefore mean no tensor was written in
    between, read without a device sync.
    """
    return tuple((id(t), t.data_ptr(), t._version) for d in dicts
                 for t in d.values() if t is not None)


class SharedEncoderGuard:
    """Whether the student's encoder modules still equal the teacher's.

    EF shares the encoder: while the student's (frozen) encoder is
    bit-identical to M_{k-1}'s, it runs once per batch and both heads read
    its features. :meth:`shared` compares the values (``torch.equal`` on
    every tensor, one device sync) at the first call and again whenever
    any encoder tensor of either model was written or replaced since the
    last check -- a ``load_state_dict`` at any level, an in-place edit by a
    hook, a ``.data`` swap -- which it detects from the tensors' version
    counters and storage pointers (:func:`write_stamp`) without touching
    their values. :meth:`reset` forgets everything (after a device move).
    """

    def __init__(self) -> None:
        self._shared: Optional[bool] = None
        self._stamp: Optional[tuple] = None
        self._dicts: List[dict] = []

    def reset(self) -> None:
        """Compare the values again at the next call."""
        self._shared = None

    def shared(self, mine: Sequence[nn.Module],
               old: Sequence[nn.Module]) -> Tuple[bool, bool]:
        """Whether ``mine`` and ``old`` hold bit-identical tensors, and
        whether the answer was computed afresh (values compared) at this
        call."""
        if self._shared is None:  # first check, or after reset()
            self._dicts = tensor_dicts(list(mine) + list(old))
        stamp = write_stamp(self._dicts)
        if self._shared is not None and stamp == self._stamp:
            return self._shared, False
        # Any write since the last check: compare the values again.
        self._stamp = stamp
        self._shared = all(same_state(a, b) for a, b in zip(mine, old))
        return self._shared, True
