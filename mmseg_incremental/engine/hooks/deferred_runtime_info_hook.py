"""mmengine's RuntimeInfoHook without a host sync per training iteration."""
from typing import List, Optional, Tuple, Union

import torch
from mmengine.hooks import CheckpointHook, LoggerHook, RuntimeInfoHook

from mmseg.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """Record each iteration's ``log_vars`` one iteration late, so the host
    never waits for the GPU in the middle of training.

    mmengine's ``RuntimeInfoHook`` puts the losses (and ``acc_seg``, ...) of
    every training iteration into the message hub with ``.item()``: on a GPU
    the host then waits for the whole iteration to finish before it loads,
    preprocesses and launches the next, and the GPU idles meanwhile. This
    hook instead starts a non-blocking copy of the iteration's scalars to
    the host (one float64 tensor) and records them at the next iteration,
    waiting for that copy alone (its CUDA event): the GPU keeps the next
    iteration queued.

    The message hub receives the same values in the same order. Where
    anything reads it, everything is recorded first, as
    ``RuntimeInfoHook`` would: the first iteration of a ``train()`` call
    (the keys' order), iterations at which a ``LoggerHook`` logs or a
    ``CheckpointHook`` saves (their intervals), the end of an epoch, the
    last iteration, before validation and after training. A hook of the
    user's that reads ``train/*`` scalars at *every* iteration sees the
    previous iteration's values.

    It replaces mmengine's default ``runtime_info`` hook
    (``default_hooks = dict(runtime_info=dict(type=
    'DeferredRuntimeInfoHook'))``); everything else of that hook is kept.
    """

    def __init__(self) -> None:
        #: (log_vars order, {key: python value}, host tensor, tensor keys,
        #: CUDA event or None) of the iteration not yet recorded.
        self._pending: Optional[Tuple[List[str], dict, torch.Tensor, List[str],
                                      object]] = None
        self._intervals: List[int] = []
        self._first = True
        #: The training iteration (``runner.iter``) whose values the
        #: message hub holds last (None before the first).
        self.recorded_iter: Optional[int] = None
        self._pending_iter = -1

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._pending = None
        self._first = True
        self.recorded_iter = None
        self._intervals = sorted({
            h.interval
            for h in runner.hooks
            if isinstance(h, (LoggerHook, CheckpointHook))
            and isinstance(h.interval, int) and h.interval > 0
        })

    def _read_now(self, runner, batch_idx: int) -> bool:
        """Whether a hook may read the message hub after this iteration."""
        if self._first or self.is_last_train_iter(runner) or \
                self.end_of_epoch(runner.train_dataloader, batch_idx):
            return True
        return any(
            self.every_n_train_iters(runner, n)
            or self.every_n_inner_iters(batch_idx, n) for n in self._intervals)

    def flush(self, runner) -> None:
        """Record the pending iteration's values (waits for their copy)."""
        if self._pending is None:
            return
        order, plain, host, tensor_keys, event = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()
        values = dict(plain)
        values.update(zip(tensor_keys, host.tolist()))
        for key in order:
            runner.message_hub.update_scalar(f'train/{key}', values[key])
        self.recorded_iter = self._pending_iter

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Record the previous iteration's values; copy this one's to the
        host without waiting (or record them now where they are read)."""
        self.flush(runner)
        if outputs is None:
            return
        tensor_keys = [
            k for k, v in outputs.items()
            if isinstance(v, torch.Tensor) and v.numel() == 1
        ]
        if not tensor_keys or self._read_now(runner, batch_idx):
            self._first = False
            super().after_train_iter(runner, batch_idx, data_batch, outputs)
            self.recorded_iter = runner.iter
            return
        plain = {k: v for k, v in outputs.items() if k not in tensor_keys}
        host = torch.stack([
            outputs[k].detach().reshape(()).to(torch.float64)
            for k in tensor_keys
        ])
        event = None
        if host.is_cuda:
            # Into pinned memory, asynchronously; the event marks its end.
            host = host.to('cpu', non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        self._pending = (list(outputs), plain, host, tensor_keys, event)
        self._pending_iter = runner.iter

    def before_val(self, runner) -> None:
        self.flush(runner)
        super().before_val(runner)

    def after_train(self, runner) -> None:
        self.flush(runner)
        super().after_train(runner)
