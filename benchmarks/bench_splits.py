"""Time the class-presence scan behind every incremental split.

Writes N VOC-size (500x375) palette masks with a few labelled blobs and a
255 border band, then builds the 15-1 splits of all steps and settings: the
first build scans every mask (cold cache), the next ones read the cache.

    python benchmarks/bench_splits.py --num 10582 --out /tmp/bench_splits
"""
import argparse
import json
import os
import os.path as osp
import shutil
import time

import numpy as np
from PIL import Image

from mmseg_incremental import get_task
from mmseg_incremental.datasets import (SETTINGS, keep_mask,
                                        load_class_presence)
from mmseg_incremental.synthetic_voc import VOC_PALETTE


def write_masks(root: str, num: int, seed: int = 0) -> list:
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:375, :500]
    palette = [v for rgb in VOC_PALETTE for v in rgb]
    paths = []
    for i in range(num):
        mask = np.zeros((375, 500), np.uint8)
        for c in rng.choice(np.arange(1, 21), rng.integers(1, 4)):
            cy, cx = rng.integers(40, 335), rng.integers(40, 460)
            ry, rx = rng.integers(20, 120, size=2)
            d = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2
            mask[(d > 0.85) & (d <= 1.0)] = 255
            mask[d <= 0.85] = c
        img = Image.fromarray(mask, mode='P')
        img.putpalette(palette)
        path = osp.join(root, f'{i:06d}.png')
        img.save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num', type=int, default=10582)
    parser.add_argument('--out', default='/tmp/bench_splits')
    parser.add_argument('--nproc', type=int, default=None)
    args = parser.parse_args()
    masks = osp.join(args.out, 'masks')
    cache = osp.join(args.out, 'cache')
    shutil.rmtree(cache, ignore_errors=True)
    paths = sorted(osp.join(masks, f) for f in os.listdir(masks)) \
        if osp.isdir(masks) else []
    if len(paths) != args.num:
        shutil.rmtree(masks, ignore_errors=True)
        t = time.perf_counter()
        paths = write_masks(masks, args.num)
        print(f'wrote {args.num} masks in {time.perf_counter() - t:.1f} s')

    t = time.perf_counter()
    presence = load_class_presence(paths, cache_dir=cache, nproc=args.nproc)
    first = time.perf_counter() - t
    t = time.perf_counter()
    presence = load_class_presence(paths, cache_dir=cache, nproc=args.nproc)
    cached = time.perf_counter() - t

    task = get_task('voc', '15-1')
    t = time.perf_counter()
    sizes = {
        s: [
            int(keep_mask(presence, task, k, s, 'seen_only', False).sum())
            for k in range(task.num_steps)
        ]
        for s in SETTINGS
    }
    filt = time.perf_counter() - t
    result = dict(
        num_masks=args.num,
        first_scan_s=round(first, 2),
        cached_s=round(cached, 3),
        filter_all_splits_s=round(filt, 4),
        split_sizes_15_1=sizes,
        cpus=os.cpu_count())
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
