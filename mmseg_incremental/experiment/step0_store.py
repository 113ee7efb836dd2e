"""A store of trained M_0 models, shared by experiments.

Step 0 is by far the longest step (|S_0| · 1000 iterations: 20k for VOC
19-1) and it does not depend on the incremental method. An experiment
publishes its M_0 here under the hash of what decides it (model, step-0
data and schedule, seed: :func:`plan.step0_fingerprint_source`); another
experiment whose step 0 hashes the same reuses it instead of retraining.

Layout: ``<root>/<hash[:16]>/source.json`` (the exact fingerprinted dict,
whose ``data`` is the content key of the step-0 training images:
``data_fingerprint``), ``<root>/<hash[:16]>/M0.pth`` (weights only) and
``M0.pth.sha256``, verified before every reuse (:func:`verify_checkpoint`).
A lookup re-reads ``source.json`` and reuses the entry only when it equals
the asking experiment's source exactly, so a hash collision or a
hand-edited entry is never served.

Experiments that start together and need the same M_0 train it once: the
one that trains holds ``<root>/<hash[:16]>.lock`` (:class:`ProcessLock`)
until its entry is published; the others wait for it (:meth:`reserve`),
then reuse the entry, or train their own after ``timeout`` seconds or when
the holder ended without publishing. Every file of an entry is written
atomically, so concurrent publishers leave one complete entry.
"""
import contextlib
import itertools
import json
import logging
import os
import os.path as osp
import shutil
import time
from typing import Iterator, Optional

import torch
from mmengine.dist import broadcast_object_list, get_rank
from mmengine.logging import print_log

from ..planning.init_files import file_sha256
from ..planning.plan import _plain, fingerprint
from ..planning.settings import SETTINGS_BY_NAME
from ..utils.atomic_io import atomic_path
from .process_lock import ProcessLock
from .work_dir_lock import check_writable

#: How long an experiment waits for another one's M_0 (seconds): the
#: ``step0_store_timeout`` setting's default.
WAIT_TIMEOUT_S = SETTINGS_BY_NAME['step0_store_timeout'].default


#: The file beside ``M0.pth`` holding its SHA-256.
SUM_SUFFIX = '.sha256'


def verify_checkpoint(path: str, check_sum: bool = True) -> Optional[str]:
    """What is wrong with checkpoint ``path`` (None: nothing).

    With ``check_sum`` and a ``<path>.sha256`` beside it, the file must
    have that SHA-256 (a cheap, complete check of a published file);
    otherwise it must load, and every floating-point tensor of its state
    dict be finite (a diverged M_0 is no teacher).
    """
    sum_file = path + SUM_SUFFIX
    if check_sum and osp.isfile(sum_file):
        with open(sum_file) as f:
            expected = f.read().strip()
        if file_sha256(path) == expected:
            return None
        return f'{path} does not match its recorded SHA-256 (damaged)'
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # truncated zip, unpickling, ...
        return f'{path} cannot be loaded ({type(error).__name__}: {error})'
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    bad = [
        k for k, v in state.items() if isinstance(v, torch.Tensor)
        and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        return (f'{path} has non-finite weights ({len(bad)} of '
                f'{len(state)} tensors, e.g. {bad[0]})')
    return None


class Step0Store:
    """Find or publish M_0 checkpoints by the fingerprint of step 0.

    Args:
        root (str): The store's folder (created on first use).
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def _entry(self, source: dict) -> str:
        return osp.join(self.root, fingerprint(source)[:16])

    def lookup(self, source: dict) -> Optional[str]:
        """The stored M_0 checkpoint for ``source``, or None.

        An entry is reused only when its ``M0.pth`` still has the SHA-256
        recorded at publication (``M0.sha256``; an entry without one must
        load, with finite tensors). A damaged entry is moved aside to
        ``<entry>.damaged-<time>`` with one line, and None is returned:
        the asking experiment trains M_0 and publishes it afresh.
        """
        entry = self._entry(source)
        ckpt = osp.join(entry, 'M0.pth')
        meta = osp.join(entry, 'source.json')
        if not (osp.isfile(ckpt) and osp.isfile(meta)):
            return None
        try:
            with open(meta) as f:
                stored = json.load(f)
        except (OSError, ValueError) as error:
            return self._set_aside(entry, f'{meta} is unreadable ({error})')
        if stored != json.loads(json.dumps(_plain(source), default=repr)):
            print_log(
                f'Step-0 store entry {entry} has the same hash but a '
                'different config; not reusing it.',
                logger='current')
            return None
        problem = verify_checkpoint(ckpt)
        if problem is not None:
            return self._set_aside(entry, problem)
        return ckpt

    def _set_aside(self, entry: str, problem: str) -> None:
        aside = f'{entry}.damaged-{time.strftime("%Y%m%d-%H%M%S")}'
        os.replace(entry, aside)
        print_log(
            f'Step-0 store: {problem}; the entry was moved to {aside} and '
            'M_0 is trained again.',
            logger='current',
            level=logging.WARNING)
        return None

    def publish(self, source: dict, checkpoint: str) -> str:
        """Copy ``checkpoint`` into the store; returns the stored path."""
        entry = self._entry(source)
        os.makedirs(entry, exist_ok=True)
        with atomic_path(osp.join(entry, 'source.json')) as tmp:
            with open(tmp, 'w') as f:
                json.dump(
                    _plain(source), f, indent=1, sort_keys=True, default=repr)
        problem = verify_checkpoint(checkpoint, check_sum=False)
        if problem is not None:  # never serve a damaged or diverged M_0
            raise RuntimeError(f'M_0 not published to the step-0 store: '
                               f'{problem}.')
        stored = osp.join(entry, 'M0.pth')
        with atomic_path(stored + SUM_SUFFIX) as tmp:
            with open(tmp, 'w') as f:
                f.write(file_sha256(checkpoint) + '\n')
        with atomic_path(stored) as tmp:
            shutil.copyfile(checkpoint, tmp)
        return stored

    @contextlib.contextmanager
    def reserve(self,
                source: dict,
                timeout: float = WAIT_TIMEOUT_S,
                poll: float = 1.0) -> Iterator[Optional[str]]:
        """Hold ``source``'s entry while this experiment decides, and
        trains, its M_0. Called by every rank; rank 0 takes the lock.

        .. code:: python

            with store.reserve(source) as stored:
                if stored is None:  # train M_0, then
                    store.publish(source, checkpoint)

        Args:
            source (dict): :func:`plan.step0_fingerprint_source`.
            timeout (float): Seconds to wait for another experiment that
                trains this M_0; then this one trains its own. Defaults to
                :data:`WAIT_TIMEOUT_S`.
            poll (float): Seconds between two tries. Defaults to 1.

        Yields:
            str | None: The stored M_0 (reuse it), or None (train it).
        """
        lock, problem = None, [None]
        if get_rank() == 0:
            problem[0] = check_writable(self.root)
            lock = ProcessLock(self._entry(source) + '.lock')
        broadcast_object_list(problem)
        if problem[0] is not None:
            raise RuntimeError(
                f'The step-0 store {self.root} is not writable '
                f'({problem[0]}); set step0_store to a writable folder. '
                'Nothing was trained.')
        self._wait(lock, source, timeout, poll)
        stored = [self.lookup(source) if lock is not None else None]
        broadcast_object_list(stored)
        if stored[0] is not None and lock is not None:
            lock.release()  # nothing to train: let the others read it
        try:
            yield stored[0]
        finally:
            if lock is not None:
                lock.release()

    def _wait(self, lock: Optional[ProcessLock], source: dict, timeout: float,
              poll: float) -> None:
        """Return on every rank once rank 0 holds ``lock`` (``None`` on the
        other ranks) or waited ``timeout`` seconds for its holder."""
        deadline = time.monotonic() + timeout
        state = ['waiting']
        for attempt in itertools.count():
            if lock is not None:
                state[0] = 'locked' if lock.try_acquire() else (
                    'timed out' if time.monotonic() >= deadline else 'waiting')
            broadcast_object_list(state)  # all ranks wait together
            if state[0] != 'waiting':
                break
            if lock is not None and attempt == 0:
                print_log(
                    f'Waiting for M_0 of {self._entry(source)}: another '
                    f'experiment trains it ({lock.holder()}); this one '
                    'reuses it once published, or trains its own after '
                    f'{timeout:.0f} s.',
                    logger='current')
            time.sleep(poll)
        if lock is not None and state[0] == 'timed out':
            print_log(
                f'No M_0 in {self._entry(source)} after {timeout:.0f} s of '
                f'waiting for {lock.holder()}; training M_0 here (the store '
                'keeps one complete entry).',
                logger='current')
