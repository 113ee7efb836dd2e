"""Which labels each segmentation mask contains, scanned once and cached.

Every incremental split (all steps, settings and evaluation protocols) is a
filter over the same per-image label sets, so the masks of a split are read
once and the result is kept on disk. The cache holds, per mask, its size and
modification time; on the next call only masks whose ``(size, mtime_ns)``
changed (or that are new) are read again, so an edited annotation is never
served stale while an unchanged split costs one ``stat`` per file.
"""
import hashlib
import os
import os.path as osp
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

#: Environment variable that overrides the default cache folder.
CACHE_ENV = 'MMSEG_INCREMENTAL_CACHE'
_CACHE_VERSION = 1


def default_cache_dir() -> str:
    """``$MMSEG_INCREMENTAL_CACHE`` or ``~/.cache/mmseg_incremental``."""
    return os.environ.get(
        CACHE_ENV,
        osp.join(osp.expanduser('~'), '.cache', 'mmseg_incremental'))


def read_label_presence(path: str) -> np.ndarray:
    """Return a bool vector of length 256: which label values ``path`` has.

    Palette PNGs (VOC) and grey-level PNGs (ADE20K, SBD-converted VOC) both
    store the label in the pixel value, which is what is read here.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ('P', 'L', 'I', 'I;16'):
                img = img.convert('L')
            arr = np.asarray(img)
    except (OSError, ValueError) as err:
        raise ValueError(
            f'Cannot read the segmentation mask {path!r} ({err}); replace '
            'or remove the file (and its line in the split list).') from err
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f'Mask {path!r} has label values outside '
                             '0..255; convert it to an 8-bit label PNG.')
        arr = arr.astype(np.uint8)
    return np.bincount(arr.ravel(), minlength=256) > 0


def _read_chunk(paths: Sequence[str]) -> np.ndarray:
    return np.stack([read_label_presence(p) for p in paths])


def _stat(paths: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    sizes = np.empty(len(paths), dtype=np.int64)
    mtimes = np.empty(len(paths), dtype=np.int64)
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
        except OSError as err:
            raise FileNotFoundError(
                f'Segmentation mask {p!r} listed in the split does not exist '
                f'({err.strerror}); check data_root / data_prefix, or '
                'remove the id from the split list.') from None
        sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
    return sizes, mtimes


def _cache_file(cache_dir: str, paths: Sequence[str]) -> str:
    key = hashlib.sha1('\n'.join(paths).encode()).hexdigest()[:20]
    return osp.join(cache_dir, f'class_presence_{key}.npz')


def _scan(paths: List[str], nproc: int) -> np.ndarray:
    """Read the masks, in ``nproc`` processes, with a progress bar."""
    if not paths:
        return np.zeros((0, 256), dtype=bool)
    chunk = 64
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    print_log(
        f'Scanning {len(paths)} segmentation masks for the labels they '
        'contain (done once, then cached)...',
        logger='current')
    if nproc > 1 and len(chunks) > 1:
        parts = track_parallel_progress(_read_chunk, chunks, nproc)
    else:
        parts = track_progress(_read_chunk, chunks)
    return np.concatenate(parts)


def load_class_presence(seg_paths: Sequence[str],
                        cache_dir: Optional[str] = None,
                        nproc: Optional[int] = None) -> np.ndarray:
    """Per-image label presence for ``seg_paths``, cached on disk.

    Args:
        seg_paths (Sequence[str]): Mask files, one per image of the split.
        cache_dir (str, optional): Folder for the cache file. Defaults to
            :func:`default_cache_dir`.
        nproc (int, optional): Processes used to read masks. Defaults to the
            number of CPUs (at most 8).

    Returns:
        np.ndarray: ``(len(seg_paths), 256)`` bool; ``[i, v]`` is True when
        mask ``i`` contains label value ``v`` (raw values, before any label
        map or ``reduce_zero_label``).
    """
    paths = [osp.abspath(p) for p in seg_paths]
    cache_dir = cache_dir or default_cache_dir()
    nproc = nproc or min(os.cpu_count() or 1, 8)
    sizes, mtimes = _stat(paths)
    cache = _cache_file(cache_dir, paths)

    presence = np.zeros((len(paths), 256), dtype=bool)
    stale = np.ones(len(paths), dtype=bool)
    if osp.isfile(cache):
        try:
            with np.load(cache) as z:
                if (int(z['version']) == _CACHE_VERSION
                        and len(z['sizes']) == len(paths)):
                    stale = (z['sizes'] != sizes) | (z['mtimes'] != mtimes)
                    presence = np.unpackbits(
                        z['presence'], axis=1, count=256).astype(bool)
        except (OSError, ValueError, KeyError):
            print_log(
                f'Ignoring unreadable presence cache {cache}.',
                logger='current')
            stale[:] = True
    if stale.any():
        idx = np.flatnonzero(stale)
        presence[idx] = _scan([paths[i] for i in idx], nproc)
        _write_cache(cache, presence, sizes, mtimes)
    return presence


def _write_cache(cache: str, presence: np.ndarray, sizes: np.ndarray,
                 mtimes: np.ndarray) -> None:
    """Write atomically; a read-only cache folder only costs a rescan."""
    try:
        os.makedirs(osp.dirname(cache), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=osp.dirname(cache), suffix='.npz.tmp')
        with os.fdopen(fd, 'wb') as f:
            np.savez(
                f,
                version=_CACHE_VERSION,
                sizes=sizes,
                mtimes=mtimes,
                presence=np.packbits(presence, axis=1))
        os.replace(tmp, cache)
    except OSError as err:
        print_log(
            f'Could not write the class-presence cache {cache} ({err}); '
            f'set ${CACHE_ENV} to a writable folder to cache the scan.',
            logger='current')
