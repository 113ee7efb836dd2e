"""Mixed precision without a loss scaler, on any device (CPU included)."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast

from mmseg.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under mmengine's ``autocast``.

    mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU (it
    asserts CUDA/NPU/MLU/MUSA, for its ``torch.cuda.amp.GradScaler``). bf16
    needs no loss scaling (its exponent range is fp32's), so this wrapper is
    ``AmpOptimWrapper`` minus the scaler: ``optim_context`` enters
    :func:`mmengine.runner.amp.autocast` with ``dtype``; backward and step
    are ``OptimWrapper``'s. The experiment uses it for ``amp='bf16'`` on the
    CPU (mmengine's ``autocast`` supports only bf16 there); on CUDA it uses
    ``AmpOptimWrapper``.

    Args:
        dtype (str | torch.dtype): ``'bfloat16'`` (default) or another dtype
            that mmengine's ``autocast`` accepts on the device.
        device_type (str, optional): ``'cpu'``, ``'cuda'``... Defaults to
            the device mmengine runs on (``mmengine.device.get_device``).
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 device_type: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError('AutocastOptimWrapper needs a floating dtype '
                             f"such as 'bfloat16'; got {dtype!r}.")
        self.cast_dtype = dtype
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module):
        """``OptimWrapper``'s context (no gradient sync while accumulating)
        and autocast to ``dtype``."""
        with super().optim_context(model), autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield
