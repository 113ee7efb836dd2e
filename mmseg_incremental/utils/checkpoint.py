# Copyright (c) OpenMMLab. All rights reserved.
"""Safe loading of mmengine checkpoints under ``torch.load(weights_only)``.

Since torch 2.6, :func:`torch.load` defaults to ``weights_only=True``: its
unpickler only rebuilds tensors and a short list of allowed globals. A
checkpoint written by mmengine's ``Runner`` holds more than tensors:

- ``meta`` and ``message_hub`` carry numpy arrays and scalars, pickled as
  ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``,
  ``numpy.dtype`` (plus the dtype's class, e.g. ``numpy.dtypes.Float64DType``)
  and ``numpy._core.multiarray.scalar``;
- ``message_hub`` keeps its logs in :class:`~mmengine.logging.HistoryBuffer`
  objects, whose state holds the class-level ``statistics_methods``
  (``HistoryBuffer.min`` and friends). Pickle protocol 2 writes such a
  dotted reference as ``builtins.getattr(HistoryBuffer, 'min')``.

Without an allowlist, resuming (``resume=True``) and ``load_from`` fail with
``UnpicklingError: Unsupported global``. :func:`register_safe_globals` adds
exactly these globals with :func:`torch.serialization.add_safe_globals`.
``builtins.getattr`` cannot be allowed as such (``getattr`` on an allowed
class reaches its ``__init__``, ``__globals__``, ...): the name
``builtins.getattr`` is bound to :func:`restricted_getattr` instead, which
only resolves the attribute names listed in :data:`SAFE_ATTRIBUTES`.

``weights_only`` stays on: a checkpoint referencing any other global
(``os.system``, ``subprocess.Popen``, ``builtins.eval``, a class with a
hostile ``__reduce__``) is refused with :class:`pickle.UnpicklingError`
before anything of it runs. A user who registers custom statistics with
``HistoryBuffer.register_statistics`` must allowlist those functions with
``torch.serialization.add_safe_globals`` too.
"""
import pickle
from typing import Any, Callable, Dict, FrozenSet, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version

SafeGlobal = Union[Callable, Tuple[Callable, str]]

#: Attributes :func:`restricted_getattr` may resolve, per owner class: the
#: statistics methods ``HistoryBuffer._set_default_statistics`` registers.
SAFE_ATTRIBUTES: Dict[type, FrozenSet[str]] = {
    HistoryBuffer: frozenset({'min', 'max', 'current', 'mean'}),
}

#: numpy dtype codes whose arrays/scalars may be rebuilt: bool, integers,
#: floats, complex. Object, string, void and datetime dtypes are left out.
_NUMPY_DTYPE_CODES = ('?' + np.typecodes['AllInteger'] +
                      np.typecodes['AllFloat'])


def restricted_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` inside the weights-only unpickler.

    Args:
        obj (Any): The object the pickle asks an attribute of.
        name (str): The attribute name.

    Returns:
        Any: ``getattr(obj, name)`` if ``obj`` is a class of
        :data:`SAFE_ATTRIBUTES` and ``name`` one of its listed attributes.

    Raises:
        pickle.UnpicklingError: For any other owner or attribute.
    """
    allowed = SAFE_ATTRIBUTES.get(obj) if isinstance(obj, type) else None
    if allowed is None or not isinstance(name, str) or name not in allowed:
        raise pickle.UnpicklingError(
            f'Refusing getattr({obj!r}, {name!r}) while loading a '
            'checkpoint: only ' +
            ', '.join(f'{cls.__name__}.{attr}'
                      for cls, attrs in SAFE_ATTRIBUTES.items()
                      for attr in sorted(attrs)) +
            ' are allowed. If the checkpoint is trusted, add the attribute '
            'to mmseg_incremental.utils.checkpoint.SAFE_ATTRIBUTES.')
    return getattr(obj, name)


def safe_globals() -> List[SafeGlobal]:
    """The globals mmengine checkpoints need, in ``add_safe_globals`` form.

    numpy's helpers are listed under both their numpy 2 (``numpy._core``)
    and numpy 1 (``numpy.core``) paths, so checkpoints written with either
    load.

    Returns:
        list: Classes/functions, or ``(object, 'module.qualname')`` pairs.
    """
    multiarray = np._core.multiarray if hasattr(
        np, '_core') else np.core.multiarray
    entries: List[SafeGlobal] = [np.ndarray, np.dtype, HistoryBuffer]
    for name in ('_reconstruct', 'scalar'):
        func = getattr(multiarray, name)
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((func, f'{module}.{name}'))
    for code in _NUMPY_DTYPE_CODES:
        dtype_cls = type(np.dtype(code))
        if dtype_cls not in entries:
            entries.append(dtype_cls)
    entries.append((restricted_getattr, 'builtins.getattr'))
    return entries


def register_safe_globals() -> bool:
    """Allowlist :func:`safe_globals` for ``torch.load(weights_only=True)``.

    Idempotent: torch keeps the allowlist as a set, so calling this again
    adds nothing (and restores the entries after
    ``torch.serialization.clear_safe_globals()``). Importing
    ``mmseg_incremental.utils`` calls it.

    Returns:
        bool: Whether anything was registered. ``False`` with torch < 2.6,
        whose ``torch.load`` does not default to ``weights_only=True``.
    """
    if digit_version(torch.__version__) < digit_version('2.6.0'):
        return False
    torch.serialization.add_safe_globals(safe_globals())
    return True
