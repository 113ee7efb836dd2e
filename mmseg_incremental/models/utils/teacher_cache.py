"""M_{k-1}'s logits, computed once per training image and replayed.

The authors' code (LTTM/IL-SemSegm, ``run_generate_old_maps.py``) runs the
previous model once over the step's images, each with one fixed
augmentation, and trains against the stored outputs. Here the cache fills
itself during training: the first time an image comes, the teacher runs
and its logits are kept; afterwards they are replayed. That is only right
if the image comes back with the *same* augmentation, which the dataset's
``augment_seed`` provides; every entry therefore also stores a checksum of
the preprocessed input, and an image whose input differs from its entry is
never replayed (the teacher runs live for it, and one warning says so).

Entries are the logits at their own resolution in fp16, in memory or in
files under a folder (one set per process, ``rank<r>.*``):

.. code:: text

    rank<r>.json   format, logits shape, teacher fingerprint
    rank<r>.bin    slot i at byte i * entry_bytes (written with pwrite)
    rank<r>.jsonl  one line per filled slot: [slot, sum, wsum, key, crc]

A slot's data is written before its index line, so every line names
complete data; a torn last line (a kill) is skipped when the files are
reopened. Every read checks the slot's bytes against the CRC-32 of its
line: a damaged entry (a flipped byte, a torn write) is dropped, logged, and
its image runs the teacher live (and is stored again) -- never replayed.
A resumed step reopens them and replays what was stored, unless
the teacher or the logits' shape differ (the files then start afresh). The
cache stops growing at ``max_size_mb``; later images run the teacher live.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import zlib
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.logging import print_log
from torch import Tensor

_FORMAT = 2
#: Elements of an input that its checksum reads (strided).
_CHECKSUM_SAMPLES = 4096


def _log(text: str, level: int = logging.INFO) -> None:
    print_log(f'teacher_cache: {text}', logger='current', level=level)


def state_fingerprint(state: Mapping[str, Tensor]) -> str:
    """SHA-1 of a state dict's keys, shapes and bytes (the teacher's)."""
    digest = hashlib.sha1()
    for key in sorted(state):
        tensor = state[key].detach().cpu()
        digest.update(f'{key}:{tuple(tensor.shape)}:{tensor.dtype};'.encode())
        digest.update(tensor.contiguous().reshape(-1).view(
            torch.uint8).numpy())
    return digest.hexdigest()


def input_checksums(inputs: Tensor) -> np.ndarray:
    """Two numbers per image that tell crops apart, read in one pass.

    Args:
        inputs (Tensor): Preprocessed images, shape (N, C, H, W).

    Returns:
        np.ndarray: ``(N, 2)`` float64: the sum of every k-th element and
        the same sum weighted by position (a flip or a shift changes it).
    """
    flat = inputs.detach().reshape(inputs.shape[0], -1)
    step = max(1, flat.shape[1] // _CHECKSUM_SAMPLES)
    sample = flat[:, ::step].double()
    weight = torch.linspace(
        1.0, 2.0, sample.shape[1], dtype=torch.float64, device=sample.device)
    return torch.stack([sample.sum(1), (sample * weight).sum(1)],
                       1).cpu().numpy()


def _same_input(a: Sequence[float], b: Sequence[float]) -> bool:
    """Equal checksums, up to the summation order of another device."""
    return all(abs(x - y) <= 1e-6 + 1e-9 * abs(y) for x, y in zip(a, b))


class TeacherCache:
    """Replay M_{k-1}'s logits of images seen before (see module docstring).

    Args:
        dir (str, optional): Folder of the on-disk cache (created; reused
            when it already holds this teacher's entries). None keeps the
            entries in memory (lost with the process). Defaults to None.
        max_size_mb (float): Bound of the stored logits, in MiB. Defaults
            to 1024.
        fingerprint (str): Identifies the teacher; files written for
            another teacher are discarded. Defaults to ''.
    """

    def __init__(self,
                 dir: Optional[str] = None,
                 max_size_mb: float = 1024,
                 fingerprint: str = '') -> None:
        if not max_size_mb > 0:
            raise ValueError(f'teacher_cache got max_size_mb={max_size_mb!r};'
                             ' use a positive size in MiB.')
        self.dir = dir
        self.max_bytes = int(max_size_mb * 2**20)
        self.fingerprint = fingerprint
        self.shape: Optional[Tuple[int, ...]] = None
        self._index: Dict[str, Tuple[int, Tuple[float, float], int]] = {}
        self._memory: List[Tensor] = []
        self._opened = False
        self._fd: Optional[int] = None
        self._lines = None
        self._warned = set()
        self.hits = self.misses = 0
        self._next_slot = 0
        #: Entries dropped because their bytes failed their checksum.
        self.damaged = 0

    # -- public ---------------------------------------------------------
    def __len__(self) -> int:
        self._open()
        return len(self._index)

    def lookup(self, keys: Sequence[Optional[str]],
               checksums: np.ndarray) -> List[Optional[Tensor]]:
        """The stored logits (fp16, CPU) of each image, None where there
        are none or where the input differs from the stored one."""
        self._open()
        found = []
        for key, sums in zip(keys, checksums):
            entry = self._index.get(key) if key is not None else None
            if entry is not None and not _same_input(entry[1], sums):
                self._warn_once(
                    'mismatch', f'the input of {key!r} differs from the one '
                    'its logits were stored for (another crop, flip or '
                    'scale): the teacher runs live for such images. With '
                    "the cache on, the training dataset needs an "
                    'augment_seed (the experiment sets it); a resumed '
                    'step needs the same pipeline.')
                entry = None
            found.append(None if entry is None else self._read_entry(key))
        self.hits += sum(f is not None for f in found)
        self.misses += sum(f is None for f in found)
        return found

    def can_store(self, key: Optional[str]) -> bool:
        """Whether ``key`` may get an entry (not there yet, has a name)."""
        self._open()
        return key is not None and key not in self._index

    def store(self, key: str, checksum: Sequence[float],
              logits: Tensor) -> bool:
        """Keep ``logits`` (C, h, w) of image ``key``; False when the cache
        is full or the shape differs from the entries'."""
        self._open()
        logits = logits.detach().to('cpu', torch.float16).contiguous()
        if self.shape is None:
            self._start(tuple(logits.shape))
        if tuple(logits.shape) != self.shape:
            self._warn_once(
                'shape', f'logits of shape {tuple(logits.shape)} do not fit '
                f'the entries ({self.shape}): such images run the teacher '
                'live (does the preprocessor pad every input to one size?).')
            return False
        slot = self._next_slot
        if (slot + 1) * self.entry_bytes > self.max_bytes:
            self._warn_once(
                'full', f'{slot} entries fill max_size_mb='
                f'{self.max_bytes / 2**20:g}: later images run the teacher '
                'live.')
            return False
        sums = (float(checksum[0]), float(checksum[1]))
        data = logits.numpy().tobytes()
        crc = zlib.crc32(data)
        if self.dir is None:
            self._memory.append(logits)
        else:
            os.pwrite(self._fd, data, slot * self.entry_bytes)
            self._lines.write(json.dumps([slot, *sums, key, crc]) + '\n')
            self._lines.flush()
        self._index[key] = (slot, sums, crc)
        self._next_slot = slot + 1
        return True

    @property
    def entry_bytes(self) -> int:
        """Bytes of one entry (fp16 logits)."""
        return 2 * int(np.prod(self.shape))

    # -- storage --------------------------------------------------------
    def _paths(self) -> Tuple[str, str, str]:
        base = osp.join(self.dir, f'rank{get_rank()}')
        return base + '.json', base + '.bin', base + '.jsonl'

    def _meta(self) -> dict:
        return dict(
            format=_FORMAT,
            shape=list(self.shape),
            dtype='float16',
            teacher=self.fingerprint)

    def _open(self) -> None:
        """Reopen the files of an earlier run of this step (lazily: the
        rank is known once the model trains)."""
        if self._opened:
            return
        self._opened = True
        if self.dir is None:
            return
        os.makedirs(self.dir, exist_ok=True)
        meta_path, data_path, index_path = self._paths()
        if not osp.exists(meta_path):
            return
        with open(meta_path) as f:
            meta = json.load(f)
        self.shape = tuple(meta['shape'])
        if meta != self._meta():
            _log(f'{meta_path} was written for another teacher or format; '
                 'starting afresh.')
            self.shape = None
            return
        size = osp.getsize(data_path) if osp.exists(data_path) else 0
        with open(index_path) if osp.exists(index_path) else open(
                os.devnull) as f:
            for line in f:
                try:
                    slot, s0, s1, key, crc = json.loads(line)
                except ValueError:
                    continue  # a line torn by a kill
                if (slot + 1) * self.entry_bytes <= size:
                    self._index[key] = (slot, (s0, s1), crc)
        # A new entry takes the slot after every slot a line names (a key
        # stored again, after its entry was damaged, names a later one).
        self._next_slot = 1 + max(
            (entry[0] for entry in self._index.values()), default=-1)
        self._attach(data_path, index_path, rewrite=True)
        _log(f'{len(self._index)} entries reused from {self.dir}.')

    def _start(self, shape: Tuple[int, ...]) -> None:
        """First entry: fix the shape; on disk, write fresh files."""
        self.shape = shape
        if self.dir is None:
            return
        meta_path, data_path, index_path = self._paths()
        for path in (data_path, index_path):
            if osp.exists(path):
                os.remove(path)
        with open(meta_path, 'w') as f:
            json.dump(self._meta(), f)
        self._attach(data_path, index_path, rewrite=False)

    def _attach(self, data_path: str, index_path: str, rewrite: bool) -> None:
        self._fd = os.open(data_path, os.O_RDWR | os.O_CREAT, 0o644)
        if rewrite:  # drop torn or stray lines for good
            with open(index_path + '.tmp', 'w') as f:
                for key, (slot, sums, crc) in sorted(
                        self._index.items(), key=lambda kv: kv[1][0]):
                    f.write(json.dumps([slot, *sums, key, crc]) + '\n')
            os.replace(index_path + '.tmp', index_path)
        self._lines = open(index_path, 'a')

    def _read_entry(self, key: str) -> Optional[Tensor]:
        """The logits of ``key``'s entry; None (entry dropped, one line)
        when its bytes no longer match their CRC-32."""
        slot, _, crc = self._index[key]
        if self.dir is None:
            return self._memory[slot]
        buf = bytearray(self.entry_bytes)
        os.preadv(self._fd, [buf], slot * self.entry_bytes)
        if zlib.crc32(buf) != crc:
            del self._index[key]
            self.damaged += 1
            _log(
                f'entry {key!r} (slot {slot}) of {self.dir} does not match '
                'its checksum; dropped: the teacher runs live for it and its '
                'logits are stored again.', logging.WARNING)
            return None
        return torch.from_numpy(np.frombuffer(buf, dtype=np.float16)).reshape(
            self.shape)

    def _warn_once(self, kind: str, text: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            _log(text, logging.WARNING)

    def close(self) -> None:
        """Close the files (they stay valid for a later run)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lines is not None:
            self._lines.close()
            self._lines = None
        self._opened = False
        self._index, self._memory = {}, []
        self._next_slot = 0
        self.shape = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __getstate__(self) -> dict:
        """Copies (``deepcopy``, pickling) reopen the files themselves."""
        state = dict(self.__dict__)
        state.update(
            _opened=False,
            _fd=None,
            _lines=None,
            _index={},
            _next_slot=0,
            _memory=[],
            shape=None)
        return state
