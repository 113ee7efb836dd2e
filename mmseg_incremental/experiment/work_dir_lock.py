"""One run per work dir: checked writable, then locked for the whole run.

A double submit, or a ``--resume`` while the first job still runs, would
have two processes write the same checkpoints. The run's rank 0 holds
``D/experiment.lock`` (:class:`ProcessLock`, released by the kernel when
the process ends, however it ends); a second run is refused at once with
the holder's host, PID and start time. Under DDP rank 0 alone takes the
lock (every job has one rank 0, so two jobs always meet there) and tells
the other ranks the outcome, so that all of them stop together.
"""
import os
import os.path as osp
from typing import Optional

from mmengine.dist import broadcast_object_list, get_rank

from .process_lock import ProcessLock

LOCK_FILE = 'experiment.lock'


def check_writable(path: str) -> Optional[str]:
    """None if files can be written in ``path`` (created if missing), else
    why not: a read-only or full file system, a path through a file."""
    probe = osp.join(path, f'.write_test.{os.getpid()}')
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, 'w') as f:
            f.write('ok')
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        return f'{type(err).__name__}: {err.strerror or err}'
    finally:
        if osp.exists(probe):
            os.remove(probe)
    return None


def lock_work_dir(work_dir: str) -> Optional[ProcessLock]:
    """Check ``work_dir`` and lock it for this run; called by every rank.

    Args:
        work_dir (str): The experiment's folder ``D`` (created if missing).

    Returns:
        ProcessLock | None: The held lock on rank 0 (release it when the
        run ends); None on the other ranks.

    Raises:
        RuntimeError: On every rank, before anything is trained, when
            ``D`` is not writable or another live run holds it.
    """
    lock, error = None, [None]
    if get_rank() == 0:
        problem = check_writable(work_dir)
        if problem is not None:
            error[0] = (f'The work dir {work_dir} is not writable ({problem})'
                        '; choose another --work-dir, or free space / grant '
                        'write access there. Nothing was trained.')
        else:
            lock = ProcessLock(osp.join(work_dir, LOCK_FILE))
            if not lock.try_acquire():
                error[0] = (f'{work_dir} is in use by another run '
                            f'({lock.holder()}); wait for it to end or stop '
                            'it, or choose another --work-dir (nothing was '
                            'changed there).')
                lock = None
    broadcast_object_list(error)
    if error[0] is not None:
        raise RuntimeError(error[0])
    return lock
