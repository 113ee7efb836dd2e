"""Is the embedded benchmark learnable, and not trivially so?

Trains a small conv net (a stride-8 encoder with a stride-2 skip, 0.26 M
parameters) jointly on all 21 classes of the embedded benchmark (docs/design.md
§7) with plain PyTorch (no mmseg model or runner): 1,200 iterations of batch
16, or fewer when they would not fit the wall-clock budget. Then prints the val
mIoU, the per-class IoU and how often each look-alike pair is confused. The
benchmark is generated first when ``--data-root`` holds none.

.. code:: text

    python benchmarks/check_benchmark_learnability.py [--data-root D]
        [--iters 1200] [--budget 170] [--threads 2]

docs/design.md §7 asks for >= 60% mIoU within a few CPU minutes and well
below 100%.
"""
import argparse
import os.path as osp
import time
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from mmseg_incremental.synthetic_voc import (LOOKALIKES, VOC_CLASSES,
                                             generate_benchmark)


def load_split(root: str, split: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """All images (N, 3, H, W) normalised, and labels (N, H, W)."""
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       f'{split}.txt')) as f:
        ids = f.read().split()
    images = np.stack([
        np.asarray(Image.open(osp.join(root, 'JPEGImages', f'{i}.jpg')))
        for i in ids
    ])
    labels = np.stack([
        np.asarray(
            Image.open(osp.join(root, 'SegmentationClass', f'{i}.png')))
        for i in ids
    ])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x.contiguous(), torch.from_numpy(labels.astype(np.int64))


def conv_bn(cin: int,
            cout: int,
            stride: int = 1,
            dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, dilation, dilation, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


Widths = Tuple[int, ...]
WIDTHS: Widths = (24, 32, 64, 96)


class SmallSegNet(nn.Module):
    """A tiny encoder (output stride 8, dilated end) with a stride-2 skip.

    About 40 M multiply-adds per 64 px image, so ~1,000 iterations of batch
    16 fit in a couple of CPU minutes.
    """

    def __init__(self, num_classes: int = 21, widths: Widths = WIDTHS) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(conv_bn(3, w1, 2), conv_bn(w1, w1))
        self.enc2 = nn.Sequential(conv_bn(w1, w2, 2), conv_bn(w2, w2))
        self.enc3 = nn.Sequential(conv_bn(w2, w3, 2), conv_bn(w3, w3))
        self.enc4 = nn.Sequential(
            conv_bn(w3, w4, dilation=2), conv_bn(w4, w4, dilation=4))
        self.fuse = nn.Sequential(conv_bn(w4 + w1, w2), conv_bn(w2, w2))
        self.cls = nn.Conv2d(w2, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s2 = self.stem(x)
        s8 = self.enc4(self.enc3(self.enc2(s2)))
        up = F.interpolate(
            s8, s2.shape[2:], mode='bilinear', align_corners=False)
        logits = self.cls(self.fuse(torch.cat([up, s2], 1)))
        return F.interpolate(
            logits, x.shape[2:], mode='bilinear', align_corners=False)


def confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              num_classes: int) -> np.ndarray:
    """Confusion matrix (rows: truth, cols: prediction), void ignored."""
    model.eval()
    mat = torch.zeros(num_classes * num_classes, dtype=torch.int64)
    with torch.no_grad():
        for i in range(0, len(x), 64):
            pred = model(x[i:i + 64]).argmax(1)
            gt = y[i:i + 64]
            keep = gt != 255
            mat += torch.bincount(
                gt[keep] * num_classes + pred[keep],
                minlength=num_classes * num_classes)
    return mat.view(num_classes, num_classes).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/embedded_voc')
    parser.add_argument(
        '--budget',
        type=float,
        default=170,
        help='most training wall-clock seconds')
    parser.add_argument(
        '--iters',
        type=int,
        default=1200,
        help='iterations, fewer when they would not fit the '
        'budget (measured over the first 10)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.time()
    stats = generate_benchmark(args.data_root)
    print(f'benchmark: {stats["train"]["num_images"]} train / '
          f'{stats["val"]["num_images"]} val images '
          f'({time.time() - start:.1f} s)')
    xt, yt = load_split(args.data_root, 'train')
    xv, yv = load_split(args.data_root, 'val')
    n_cls = len(VOC_CLASSES)
    model = SmallSegNet(n_cls)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    gen_t = torch.Generator().manual_seed(args.seed)
    it, total_iters, t0 = 0, None, time.time()
    cpu0 = time.process_time()
    while total_iters is None or it < total_iters:
        idx = torch.randint(len(xt), (args.batch_size, ), generator=gen_t)
        x, y = xt[idx], yt[idx]
        flip = torch.rand(args.batch_size, generator=gen_t) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        if total_iters is not None:
            for g in opt.param_groups:
                g['lr'] = args.lr * (1 - it / total_iters)**0.9
        model.train()
        loss = F.cross_entropy(model(x), y, ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it == 10:  # fit the budget
            total_iters = min(
                args.iters,
                max(11, int(args.budget / ((time.time() - t0) / it))))
        if it % 100 == 0:
            print(
                f'iter {it}/{total_iters} loss {loss.item():.3f} '
                f'{time.time() - t0:.0f} s',
                flush=True)
    train_s, cpu_s = time.time() - t0, time.process_time() - cpu0
    mat = confusion(model, xv, yv, n_cls).astype(np.float64)
    tp = np.diag(mat)
    iou = tp / np.maximum(mat.sum(0) + mat.sum(1) - tp, 1)
    print(f'\ntrained {it} iters (batch {args.batch_size}, '
          f'{it * args.batch_size / len(xt):.1f} epochs) in {train_s:.0f} s '
          f'wall, {cpu_s:.0f} s CPU, on {args.threads} threads')
    for c, name in enumerate(VOC_CLASSES):
        print(f'  {c:2d} {name:12s} IoU {100 * iou[c]:5.1f}')
    print('look-alike pairs (% of the first class\'s pixels predicted as '
          'the second, and back):')
    for a, b, cue in LOOKALIKES:
        ab = 100 * mat[a, b] / max(mat[a].sum(), 1)
        ba = 100 * mat[b, a] / max(mat[b].sum(), 1)
        print(f'  {VOC_CLASSES[a]}->{VOC_CLASSES[b]} {ab:4.1f}  '
              f'{VOC_CLASSES[b]}->{VOC_CLASSES[a]} {ba:4.1f}  '
              f'({cue})')
    print(f'val mIoU {100 * iou.mean():.1f}  pixel acc '
          f'{100 * tp.sum() / mat.sum():.1f}  total wall time '
          f'{time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
