"""Compare incremental experiments, methods as rows like the paper.

    python tools/compare_runs.py work_dirs/voc_15-1_ft work_dirs/voc_15-1_ld
    python tools/compare_runs.py work_dirs/* --out work_dirs/cmp --images 4

Prints the Markdown tables; with ``--out DIR`` also writes
``DIR/comparison.md``, ``comparison.csv`` and ``comparison_steps.csv``, and
with ``--images N`` the picture ``DIR/comparison.png`` (image | ground truth
| each run's final prediction on N val images).
"""
import argparse
import os.path as osp
import sys

from mmseg_incremental.reporting import compare_runs
from mmseg_incremental.utils.errors import RunStopped


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Put several incremental experiments in one table')
    parser.add_argument(
        'work_dirs', nargs='+', help='experiment work dirs (summary.json)')
    parser.add_argument('--out', help='folder for the .md, .csv and .png')
    parser.add_argument(
        '--images',
        type=int,
        default=0,
        help='number of val images of the prediction picture (needs --out)')
    parser.add_argument(
        '--device', default='cpu', help='device of the models, e.g. cuda:0')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    print(
        compare_runs(
            args.work_dirs,
            out_dir=args.out,
            images=args.images,
            device=args.device))


if __name__ == '__main__':
    try:
        main()
    except RunStopped as stop:  # a missing or damaged file: one line
        sys.exit(f'{osp.basename(sys.argv[0])}: error: {stop}')
