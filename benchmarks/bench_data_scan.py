"""Cost of the split scan that names bad data and keys the step-0 data.

    python benchmarks/bench_data_scan.py [--num 10582] [--dir /tmp/scan]

Writes ``num`` VOC-sized label PNGs (500 x 375, a few regions each) and
their JPEG images, then times :func:`scan_masks` cold (reads every mask and
image header: presence, shapes, CRC-32) and warm (the cache: one ``stat``
per file), and the content key of the split. Prints one JSON line.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

from mmseg_incremental.datasets.class_presence import scan_masks


def make_split(root: str, num: int) -> tuple:
    rng = np.random.default_rng(0)
    palette = [v for c in range(256) for v in (c, c, c)]
    image = osp.join(root, 'image.jpg')
    Image.fromarray(np.zeros((375, 500, 3), np.uint8)).save(image)
    segs, imgs = [], []
    for i in range(num):
        mask = np.zeros((375, 500), np.uint8)
        for _ in range(3):
            y, x = rng.integers(0, 300), rng.integers(0, 400)
            mask[y:y + 75, x:x + 100] = rng.integers(1, 21)
        mask[370:] = 255
        seg = osp.join(root, f'{i:06d}.png')
        img = Image.fromarray(mask, mode='P')
        img.putpalette(palette)
        img.save(seg)
        jpg = osp.join(root, f'{i:06d}.jpg')
        shutil.copyfile(image, jpg)
        segs.append(seg)
        imgs.append(jpg)
    return segs, imgs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num', type=int, default=10582)
    parser.add_argument('--dir', default=None)
    parser.add_argument('--nproc', type=int, default=2)
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix='scan_bench_')
    os.makedirs(root, exist_ok=True)
    segs, imgs = make_split(root, args.num)
    cache = osp.join(root, 'cache')
    start = time.perf_counter()
    scan = scan_masks(segs, imgs, cache_dir=cache, nproc=args.nproc)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    scan = scan_masks(segs, imgs, cache_dir=cache, nproc=args.nproc)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    digest = hashlib.sha256()
    for key in zip(segs, scan.digests.tolist(), imgs,
                   scan.image_sizes.tolist()):
        digest.update(repr(key).encode())
    key_s = time.perf_counter() - start
    print(
        json.dumps(
            dict(
                masks=args.num,
                nproc=args.nproc,
                cold_scan_s=round(cold, 2),
                warm_scan_s=round(warm, 3),
                content_key_s=round(key_s, 3))))
    if args.dir is None:
        shutil.rmtree(root)


if __name__ == '__main__':
    main()
