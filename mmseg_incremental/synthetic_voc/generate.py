"""Generate the embedded benchmark: a synthetic VOC tree from a seed.

.. code:: text

    generate_benchmark(out_dir, ...)
      _reuse_existing: a complete benchmark of the same parameters -> stats
      in a hidden sibling folder, for each split and image i:
        make_image(seed, split, i): compose_scene -> render_scene
        write_sample, SplitStats.add
      write_split_list, write_manifest, rename into place
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Optional, Tuple

import numpy as np

from .appearance import LOOKALIKES
from .render import render_scene
from .scene import compose_scene
from .stats import SplitStats
from .voc_classes import VOC_CLASSES
from .voc_tree import (MANIFEST, SPLITS, image_ids, make_tree, read_manifest,
                       split_is_complete, write_manifest, write_sample,
                       write_split_list)

#: Bump when the output for a given seed changes; stored in the manifest so
#: that a benchmark from older code is never taken for a current one.
GENERATOR_VERSION = 2


def make_image(seed: int, split: str, index: int,
               size: int) -> Tuple[np.ndarray, np.ndarray, str]:
    """Image ``index`` of ``split``; the same arguments, the same pixels.

    The scene's content and its rendering draw from two generators spawned
    from ``(seed, split, index)``, so each image is independent of the
    others and a change to the rendering leaves the layout as it was.

    Returns:
        tuple: uint8 RGB image (size, size, 3), uint8 label map
        (size, size) and the scene type.
    """
    seq = np.random.SeedSequence([seed, SPLITS.index(split), index])
    layout_rng, paint_rng = (np.random.default_rng(s) for s in seq.spawn(2))
    scene = compose_scene(layout_rng, size)
    image, label = render_scene(scene, size, paint_rng)
    return image, label, scene.kind


def write_split(root: str, split: str, num: int, size: int, seed: int) -> dict:
    """Write one split's images, masks and list; returns its statistics."""
    stats = SplitStats()
    ids = image_ids(split, num)
    for i, img_id in enumerate(ids):
        image, label, kind = make_image(seed, split, i, size)
        write_sample(root, img_id, image, label)
        stats.add(label, kind)
    write_split_list(root, split, ids)
    return stats.to_dict()


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f'{name} must be an integer, got {value!r}.')
    if not low <= value <= high:
        raise ValueError(f'{name}={value} is out of range; use a value in '
                         f'[{low}, {high}].')
    return int(value)


def _is_complete(root: str, params: dict) -> bool:
    return all(
        split_is_complete(root, s, image_ids(s, params[f'num_{s}']))
        for s in SPLITS)


def _reuse_existing(root: str, params: dict,
                    overwrite: bool) -> Optional[dict]:
    """Stats of a complete benchmark of ``params`` in ``root``, else None.

    Raises:
        FileExistsError: ``root`` holds something else, or another or an
            incomplete benchmark and ``overwrite`` is False.
    """
    manifest = read_manifest(root)
    if manifest is None:
        raise FileExistsError(
            f'out_dir {root} is not empty and holds no embedded '
            f'benchmark (no valid {MANIFEST}); refusing to write into '
            'it. Pass an empty or new directory.')
    same = manifest.get('parameters') == params
    if same and _is_complete(root, params):
        return manifest['stats']
    if not overwrite:
        problem = ('is incomplete' if same else
                   f'was made with parameters {manifest["parameters"]}, '
                   f'not {params}')
        raise FileExistsError(
            f'The embedded benchmark in {root} {problem}; pass '
            'overwrite=True to regenerate it, or use another out_dir.')
    return None


def _replace_dir(tmp: str, root: str) -> None:
    """Move ``tmp`` to ``root``; an old ``root`` is removed afterwards."""
    old = None
    if osp.isdir(root):
        if os.listdir(root):
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(root)}.old-', dir=osp.dirname(root))
            os.rename(root, osp.join(old, 'benchmark'))
        else:
            os.rmdir(root)
    os.rename(tmp, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_tree(tmp: str, params: dict) -> dict:
    """Write the whole benchmark into ``tmp``; returns the statistics."""
    make_tree(tmp)
    stats = {
        split:
        write_split(tmp, split, params[f'num_{split}'], params['image_size'],
                    params['seed'])
        for split in SPLITS
    }
    write_manifest(
        tmp,
        dict(
            parameters=params,
            classes=list(VOC_CLASSES),
            lookalikes=[list(p) for p in LOOKALIKES],
            stats=stats))
    return stats


def generate_benchmark(out_dir: str,
                       num_train: int = 1500,
                       num_val: int = 300,
                       image_size: int = 64,
                       seed: int = 0,
                       overwrite: bool = False) -> dict:
    """Write the embedded benchmark (a VOC tree) and return its statistics.

    The defaults fit the demo: 64 px images keep one training of a tiny
    ResNet within tens of seconds on 2 CPU cores while objects stay
    recognisable (32-48 px across when alone, 18-28 px when 3-4 share an
    image), and 1,500 training images leave every step of 15-1, 15-5 and
    19-1 more than 60 images under the sequential rule (fg ∩ U_k ≠ ∅ and
    fg ⊆ S_k). 300 val images hold every class. Generation takes a few
    seconds (a few ms per image).

    Idempotent: when ``out_dir`` already holds a complete benchmark with the
    same parameters its statistics are returned and nothing is written. The
    tree is built in a hidden sibling directory and renamed into place at
    the end, so an interrupted run never looks complete.

    Args:
        out_dir (str): Directory of the VOC tree (created if missing).
        num_train (int): Number of training images. Defaults to 1500.
        num_val (int): Number of validation images. Defaults to 300.
        image_size (int): Side of the square images in pixels; the void
            band on object borders is ``2 * max(1, round(size / 64))`` px
            wide. Defaults to 64.
        seed (int): Seed; the same seed gives byte-identical files.
            Defaults to 0.
        overwrite (bool): Replace a benchmark of ``out_dir`` that was made
            with other parameters (or is incomplete). A directory that is
            not a benchmark is never replaced. Defaults to False.

    Returns:
        dict: ``{'train': s, 'val': s}``, ``s`` from
        :meth:`.stats.SplitStats.to_dict`.
    """
    params = dict(
        num_train=_check_int('num_train', num_train, 1, 10**6),
        num_val=_check_int('num_val', num_val, 1, 10**6),
        image_size=_check_int('image_size', image_size, 32, 2048),
        seed=_check_int('seed', seed, 0, 2**63 - 1),
        version=GENERATOR_VERSION)
    root = osp.abspath(out_dir)
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(
            f'out_dir {root} exists and is not a directory; pass a '
            'directory path.')
    replace = osp.isdir(root) and bool(os.listdir(root))
    if replace:
        stats = _reuse_existing(root, params, overwrite)
        if stats is not None:
            return stats
    parent = osp.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}.tmp-', dir=parent)
    try:
        stats = _write_tree(tmp, params)
        if not replace and osp.isdir(root) and os.listdir(root):
            # Another process wrote ``root`` meanwhile; never mix.
            other = read_manifest(root)
            if other is None or other.get('parameters') != params or (
                    not _is_complete(root, params)):
                raise FileExistsError(
                    f'{root} was filled by another process during the '
                    'generation; check it, then call again.')
            return other['stats']
        _replace_dir(tmp, root)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(json.dumps(stats))
