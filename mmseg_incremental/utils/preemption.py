"""Catch the signals that announce a preemption, for the training loop.

SLURM sends SIGTERM before it kills a preempted job (and, with
``--signal=USR1@<seconds>``, SIGUSR1 before the time limit); a user stops
a run with Ctrl-C (SIGINT). While :func:`catch_preemption` is active, the
first such signal only records its name (:func:`preemption_requested`);
``PreemptionHook`` then saves a checkpoint at the current iteration and
stops the run with :class:`~mmseg_incremental.utils.errors.Preempted`,
whose exit status the SLURM script requeues on. A second identical signal
acts as it would without this module (SIGINT: ``KeyboardInterrupt``,
SIGTERM: the process ends at once).
"""
import contextlib
import os
import signal
import threading
from typing import Iterator, Optional

#: The signals taken as "save and stop".
SIGNALS = ('SIGTERM', 'SIGINT', 'SIGUSR1')

_requested: Optional[str] = None
_owner_pid: Optional[int] = None


def preemption_requested() -> Optional[str]:
    """The name of the first signal caught (``'SIGTERM'``), or None."""
    return _requested


def agreed_preemption() -> Optional[str]:
    """:func:`preemption_requested` agreed by every process: the signal
    any rank caught (one ``all_reduce``; no communication alone)."""
    import torch
    from mmengine.dist import all_reduce, get_world_size
    name = _requested
    if get_world_size() == 1:
        return name
    device = 'cuda' if torch.cuda.is_available() and \
        torch.distributed.get_backend() == 'nccl' else 'cpu'
    code = torch.tensor([0 if name is None else SIGNALS.index(name) + 1],
                        device=device)
    all_reduce(code, op='max')
    value = int(code.item())
    return SIGNALS[value - 1] if value else None


def clear_preemption() -> None:
    """Forget a caught signal (a new run in this process)."""
    global _requested
    _requested = None


def _handler(previous: dict):

    def handle(signum, frame) -> None:
        global _requested
        if os.getpid() != _owner_pid:  # a forked child: act as before
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            os.kill(os.getpid(), signum)
            return
        if _requested is None:
            _requested = signal.Signals(signum).name
        # A second signal of this kind acts as it did before.
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))

    return handle


@contextlib.contextmanager
def catch_preemption() -> Iterator[None]:
    """Record SIGTERM, SIGINT and SIGUSR1 instead of dying, inside the
    block (main thread only; elsewhere the block runs unchanged)."""
    global _owner_pid
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear_preemption()
    _owner_pid = os.getpid()
    previous = {}
    for name in SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.getsignal(number)
    handle = _handler(previous)
    for number in previous:
        signal.signal(number, handle)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
