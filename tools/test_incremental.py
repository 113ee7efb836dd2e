"""Evaluate finished steps of an experiment under any protocol.

    python tools/test_incremental.py WORK_DIR --eval-protocol mask_unseen
    python tools/test_incremental.py WORK_DIR --step 3 \
        --eval-protocol unseen_as_background

Writes WORK_DIR/eval_<protocol>/summary.json and report.md beside the
original ones; nothing is trained.
"""
import argparse
import os.path as osp
import sys

from mmseg_incremental.datasets import EVAL_PROTOCOLS
from mmseg_incremental.experiment.reevaluate import reevaluate
from mmseg_incremental.reporting import write_report
from mmseg_incremental.utils.errors import RunStopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='experiment folder D')
    parser.add_argument(
        '--step',
        type=int,
        nargs='+',
        help='steps to evaluate (default: all finished)')
    parser.add_argument(
        '--eval-protocol', choices=EVAL_PROTOCOLS, required=True)
    args = parser.parse_args()
    import mmseg_incremental  # noqa: F401  (registers the components)
    summary = reevaluate(args.work_dir, args.eval_protocol, args.step)
    out_dir = f'{args.work_dir}/eval_{args.eval_protocol}'
    write_report(out_dir, summary)
    for entry in summary['steps']:
        m = entry['metrics']
        print(f"step {entry['step']} ({args.eval_protocol}): mIoU "
              f"{m['mIoU']}, old {m['mIoU_old']}, new {m['mIoU_new']}")
    print(f'Report: {out_dir}/report.md')


if __name__ == '__main__':
    try:
        main()
    except RunStopped as stop:  # a missing or damaged file: one line
        sys.exit(f'{osp.basename(sys.argv[0])}: error: {stop}')
