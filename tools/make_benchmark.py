"""Generate the embedded benchmark (a synthetic Pascal VOC tree).

Prints the statistics per class and split, and how many training images
each step of 19-1, 15-5 and 15-1 keeps under the sequential setting.

.. code:: text

    python tools/make_benchmark.py data/embedded_voc
    python tools/make_benchmark.py data/small --num-train 200 --seed 1 \\
        --overwrite
"""
import argparse
import time

from mmseg_incremental.synthetic_voc import (VOC_CLASSES, generate_benchmark,
                                             mask_paths)
from mmseg_incremental.datasets import keep_mask, load_class_presence
from mmseg_incremental.tasks import get_task


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the embedded VOC-format benchmark.')
    parser.add_argument('out_dir', help='directory of the VOC tree')
    parser.add_argument('--num-train', type=int, default=1500)
    parser.add_argument('--num-val', type=int, default=300)
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a benchmark made with other parameters')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.time()
    try:
        stats = generate_benchmark(
            args.out_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            image_size=args.image_size,
            seed=args.seed,
            overwrite=args.overwrite)
    except (OSError, TypeError, ValueError) as err:
        raise SystemExit(f'error: {err}')  # overwrite=True is --overwrite
    print(f'{args.out_dir}: {stats["train"]["num_images"]} train / '
          f'{stats["val"]["num_images"]} val images of '
          f'{args.image_size} px ({time.time() - start:.1f} s)\n')
    print(f'{"id":>2} {"class":12} {"train imgs":>10} {"train px%":>9} '
          f'{"val imgs":>8} {"val px%":>7}')
    for c, name in enumerate(VOC_CLASSES):
        tr, va = stats['train'], stats['val']
        print(f'{c:2d} {name:12} {tr["image_counts"][name]:10d} '
              f'{100 * tr["pixel_fractions"][name]:9.2f} '
              f'{va["image_counts"][name]:8d} '
              f'{100 * va["pixel_fractions"][name]:7.2f}')
    print(f'   {"void (255)":12} {"":10} '
          f'{100 * stats["train"]["void_fraction"]:9.2f} {"":8} '
          f'{100 * stats["val"]["void_fraction"]:7.2f}')
    # The class-presence cache that the incremental datasets read.
    presence = load_class_presence(mask_paths(args.out_dir, 'train'))
    print('\ntrain images per step (sequential: fg ∩ U_k ≠ ∅, fg ⊆ S_k):')
    for name in ('19-1', '15-5', '15-1'):
        task = get_task('voc', name)
        sizes = [
            int(
                keep_mask(presence, task, k, 'sequential', 'seen_only',
                          False).sum()) for k in range(task.num_steps)
        ]
        print(f'  {name:5} ' + ' '.join(str(n) for n in sizes))


if __name__ == '__main__':
    main()
