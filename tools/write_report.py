"""(Re)write the report of finished or running experiments.

    python tools/write_report.py work_dirs/voc_15-1_ld [work_dirs/... ...]

Reads each ``WORK_DIR/summary.json`` and writes ``report.md``,
``metrics.csv``, ``miou_per_step.png`` and ``iou_per_class.png`` beside it
(what the training tool writes after every step).
"""
import argparse
import os.path as osp
import sys

from mmseg_incremental.reporting import RunSummary, write_report
from mmseg_incremental.utils.errors import RunStopped


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write report.md, metrics.csv and plots of experiments')
    parser.add_argument(
        'work_dirs', nargs='+', help='experiment work dirs (summary.json)')
    return parser.parse_args()


def main() -> None:
    for work_dir in parse_args().work_dirs:
        write_report(work_dir, RunSummary.load(work_dir))
        print(f'{work_dir}/report.md')


if __name__ == '__main__':
    try:
        main()
    except RunStopped as stop:  # a missing or damaged file: one line
        sys.exit(f'{osp.basename(sys.argv[0])}: error: {stop}')
