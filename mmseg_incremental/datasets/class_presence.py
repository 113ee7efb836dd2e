"""Which labels each segmentation mask contains, scanned once and cached.

Every incremental split (all steps, settings and evaluation protocols) is a
filter over the same per-image label sets, so the masks of a split are read
once and the result is kept on disk. The cache holds, per mask, its size and
modification time; on the next call only masks whose ``(size, mtime_ns)``
changed (or that are new) are read again, so an edited annotation is never
served stale while an unchanged split costs one ``stat`` per file.

The same pass records what the dataset checks before anything trains
(:class:`MaskScan`): each mask's shape and, when the images are given,
each image's (read from its header), and a CRC-32 of each mask's bytes --
the content key of the step-0 data (``data_fingerprint``).
"""
import hashlib
import io
import os
import os.path as osp
import tempfile
import zlib
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

#: Environment variable that overrides the default cache folder.
CACHE_ENV = 'MMSEG_INCREMENTAL_CACHE'
_CACHE_VERSION = 2


def default_cache_dir() -> str:
    """``$MMSEG_INCREMENTAL_CACHE`` or ``~/.cache/mmseg_incremental``."""
    return os.environ.get(
        CACHE_ENV,
        osp.join(osp.expanduser('~'), '.cache', 'mmseg_incremental'))


def _decode_mask(path: str, data: bytes) -> np.ndarray:
    """The label values of a mask file's bytes (palette or grey PNG)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
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
    return arr


def _read_file(path: str) -> bytes:
    with open(path, 'rb') as f:
        return f.read()


def read_label_presence(path: str) -> np.ndarray:
    """Return a bool vector of length 256: which label values ``path`` has.

    Palette PNGs (VOC) and grey-level PNGs (ADE20K, SBD-converted VOC) both
    store the label in the pixel value, which is what is read here.
    """
    arr = _decode_mask(path, _read_file(path))
    return np.bincount(arr.ravel(), minlength=256) > 0


def image_shape(path: str) -> Tuple[int, int]:
    """``(h, w)`` of an image, from its header alone."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, ValueError) as err:
        raise ValueError(
            f'Cannot read the image {path!r} ({err}); replace or remove the '
            'file (and its line in the split list).') from err
    return height, width


def _read_chunk(
    pairs: Sequence[Tuple[str, Optional[str]]]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Presence, ``[mask h, w, image h, w]`` (image -1 when not asked) and
    the CRC-32 of each mask file."""
    presence = np.zeros((len(pairs), 256), dtype=bool)
    shapes = np.full((len(pairs), 4), -1, dtype=np.int64)
    digests = np.zeros(len(pairs), dtype=np.uint32)
    for i, (seg, img) in enumerate(pairs):
        data = _read_file(seg)
        arr = _decode_mask(seg, data)
        presence[i] = np.bincount(arr.ravel(), minlength=256) > 0
        shapes[i, :2] = arr.shape[:2]
        if img is not None:
            shapes[i, 2:] = image_shape(img)
        digests[i] = zlib.crc32(data)
    return presence, shapes, digests


def _stat(paths: Sequence[str],
          kind: str = 'Segmentation mask') -> Tuple[np.ndarray, np.ndarray]:
    sizes = np.empty(len(paths), dtype=np.int64)
    mtimes = np.empty(len(paths), dtype=np.int64)
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
        except OSError as err:
            raise FileNotFoundError(
                f'{kind} {p!r} listed in the split does not exist '
                f'({err.strerror}); check data_root / data_prefix, or '
                'remove the id from the split list.') from None
        sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
    return sizes, mtimes


def _cache_file(cache_dir: str, paths: Sequence[str],
                img_paths: Optional[Sequence[str]] = None) -> str:
    text = '\n'.join(paths)
    if img_paths is not None:
        text += '\n|images\n' + '\n'.join(img_paths)
    key = hashlib.sha1(text.encode()).hexdigest()[:20]
    return osp.join(cache_dir, f'class_presence_{key}.npz')


def _scan(pairs: List[Tuple[str, Optional[str]]],
          nproc: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the masks (and image headers), in ``nproc`` processes, with a
    progress bar."""
    if not pairs:
        return (np.zeros((0, 256), dtype=bool), np.zeros((0, 4), np.int64),
                np.zeros(0, np.uint32))
    chunk = 64
    chunks = [pairs[i:i + chunk] for i in range(0, len(pairs), chunk)]
    print_log(
        f'Scanning {len(pairs)} segmentation masks for the labels they '
        'contain (done once, then cached)...',
        logger='current')
    if nproc > 1 and len(chunks) > 1:
        parts = track_parallel_progress(_read_chunk, chunks, nproc)
    else:
        parts = track_progress(_read_chunk, chunks)
    return tuple(np.concatenate(p) for p in zip(*parts))


@dataclass
class MaskScan:
    """What the scan of a split knows of each image.

    Attributes:
        presence (np.ndarray): ``(N, 256)`` bool; ``[i, v]``: mask ``i``
            contains the raw label value ``v``.
        mask_shapes (np.ndarray): ``(N, 2)`` ``(h, w)`` of each mask.
        image_shapes (np.ndarray | None): ``(N, 2)`` ``(h, w)`` of each
            image (from its header), when the images were given.
        digests (np.ndarray): ``(N,)`` CRC-32 of each mask file's bytes.
        image_sizes (np.ndarray | None): ``(N,)`` bytes of each image file.
    """

    presence: np.ndarray
    mask_shapes: np.ndarray
    image_shapes: Optional[np.ndarray]
    digests: np.ndarray
    image_sizes: Optional[np.ndarray]


def scan_masks(seg_paths: Sequence[str],
               img_paths: Optional[Sequence[str]] = None,
               cache_dir: Optional[str] = None,
               nproc: Optional[int] = None) -> MaskScan:
    """Scan a split's masks (and image headers), cached on disk.

    A cached entry is reused only while its mask's -- and, when given, its
    image's -- ``(size, mtime_ns)`` are unchanged; changed or new files
    are read again.

    Args:
        seg_paths (Sequence[str]): Mask files, one per image of the split.
        img_paths (Sequence[str], optional): The images, in the same order
            (their shapes are read from the headers). Defaults to None.
        cache_dir (str, optional): Folder for the cache file. Defaults to
            :func:`default_cache_dir`.
        nproc (int, optional): Processes used to read masks. Defaults to the
            number of CPUs (at most 8).
    """
    paths = [osp.abspath(p) for p in seg_paths]
    images = None if img_paths is None else [
        osp.abspath(p) for p in img_paths
    ]
    cache_dir = cache_dir or default_cache_dir()
    nproc = nproc or min(os.cpu_count() or 1, 8)
    sizes, mtimes = _stat(paths)
    if images is not None:
        img_sizes, img_mtimes = _stat(images, 'Image')
        sizes = np.stack([sizes, img_sizes], 1)
        mtimes = np.stack([mtimes, img_mtimes], 1)
    cache = _cache_file(cache_dir, paths, images)

    n = len(paths)
    presence = np.zeros((n, 256), dtype=bool)
    shapes = np.full((n, 4), -1, dtype=np.int64)
    digests = np.zeros(n, dtype=np.uint32)
    stale = np.ones(n, dtype=bool)
    if osp.isfile(cache):
        try:
            with np.load(cache) as z:
                if (int(z['version']) == _CACHE_VERSION
                        and z['sizes'].shape == sizes.shape):
                    changed = (z['sizes'] != sizes) | (z['mtimes'] != mtimes)
                    stale = changed.reshape(n, -1).any(1)
                    presence = np.unpackbits(
                        z['presence'], axis=1, count=256).astype(bool)
                    shapes, digests = z['shapes'], z['digests']
        except (OSError, ValueError, KeyError):
            print_log(
                f'Ignoring unreadable presence cache {cache}.',
                logger='current')
            stale[:] = True
    if stale.any():
        idx = np.flatnonzero(stale)
        part = _scan([(paths[i], None if images is None else images[i])
                      for i in idx], nproc)
        presence[idx], shapes[idx], digests[idx] = part
        _write_cache(
            cache,
            presence=np.packbits(presence, axis=1),
            sizes=sizes,
            mtimes=mtimes,
            shapes=shapes,
            digests=digests)
    return MaskScan(
        presence=presence,
        mask_shapes=shapes[:, :2],
        image_shapes=None if images is None else shapes[:, 2:],
        digests=digests,
        image_sizes=None if images is None else sizes[:, 1])


def load_class_presence(seg_paths: Sequence[str],
                        cache_dir: Optional[str] = None,
                        nproc: Optional[int] = None) -> np.ndarray:
    """Per-image label presence for ``seg_paths``, cached on disk
    (:func:`scan_masks`).

    Returns:
        np.ndarray: ``(len(seg_paths), 256)`` bool; ``[i, v]`` is True when
        mask ``i`` contains label value ``v`` (raw values, before any label
        map or ``reduce_zero_label``).
    """
    return scan_masks(seg_paths, cache_dir=cache_dir, nproc=nproc).presence


def _write_cache(cache: str, **arrays: np.ndarray) -> None:
    """Write atomically; a read-only cache folder only costs a rescan."""
    try:
        os.makedirs(osp.dirname(cache), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=osp.dirname(cache), suffix='.npz.tmp')
        with os.fdopen(fd, 'wb') as f:
            np.savez(f, version=_CACHE_VERSION, **arrays)
        os.replace(tmp, cache)
    except OSError as err:
        print_log(
            f'Could not write the class-presence cache {cache} ({err}); '
            f'set ${CACHE_ENV} to a writable folder to cache the scan.',
            logger='current')
