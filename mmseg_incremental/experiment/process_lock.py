"""An OS lock that names its holder and dies with it.

The experiment holds one on its work dir (``D/experiment.lock``) for the
whole run, and one on a step-0 store entry while it trains that M_0. The
lock is ``fcntl.flock`` on the file: the kernel drops it when the process
ends, however it ends (``SIGKILL``, a preempted node), so a lock file left
behind never blocks a later run; only a live holder does. The holder's
host, PID and start time are written into the file for the message of
whoever is refused.
"""
import fcntl
import json
import os
import socket
import time
from typing import Optional, Set

# Forked children (DataLoader workers) inherit the open lock; they close
# their copy at once, so the lock ends with the process that took it.
_HELD_FDS: Set[int] = set()


def _close_held_in_child() -> None:
    for fd in _HELD_FDS:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_FDS.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


class ProcessLock:
    """An exclusive lock on ``path`` for this process.

    Args:
        path (str): The lock file (created if missing, never removed).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; False while another holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        info = dict(
            host=socket.gethostname(),
            pid=os.getpid(),
            started=time.strftime('%Y-%m-%d %H:%M:%S %z'))
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        self._fd = fd
        _HELD_FDS.add(fd)
        return True

    def holder(self) -> str:
        """Who holds (or last held) the lock, e.g. ``host n1, PID 42,
        started 2026-11-26 14:00:00 +0000``."""
        try:
            with open(self.path) as f:
                info = json.load(f)
            return (f'host {info["host"]}, PID {info["pid"]}, started '
                    f'{info["started"]}')
        except (OSError, ValueError, KeyError):
            # Taken this instant: the holder is writing its name.
            return 'a process that is starting'

    def release(self) -> None:
        """Give the lock back (the file stays, naming the last holder)."""
        if self._fd is None:
            return
        _HELD_FDS.discard(self._fd)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
