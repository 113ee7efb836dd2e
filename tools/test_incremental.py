"""Evaluate finished steps of an experiment under any protocol.

    python tools/test_incremental.py WORK_DIR --eval-protocol mask_unseen
    python tools/test_incremental.py WORK_DIR --step 3 \
        --eval-protocol unseen_as_background
    python tools/test_incremental.py WORK_DIR --eval-protocol mask_unseen \
        --eval-crop 512      # MiB / PLOP's centre crop ('none': whole)

Writes WORK_DIR/eval_<protocol>/summary.json and report.md beside the
original ones; nothing is trained.
"""
import argparse
import os.path as osp
import sys

from mmseg_incremental.datasets import EVAL_PROTOCOLS
from mmseg_incremental.experiment.reevaluate import (KEEP, reevaluate,
                                                     reevaluation_dir)
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
    parser.add_argument(
        '--eval-crop',
        default=None,
        metavar='N|none',
        help="evaluate the N x N centre crop after resizing the short side "
        "to N (MiB and PLOP: 512), or 'none' for whole images (default: "
        'as the experiment evaluated)')
    args = parser.parse_args()
    crop = KEEP
    if args.eval_crop is not None:
        if args.eval_crop.lower() == 'none':
            crop = None
        elif args.eval_crop.isdigit() and int(args.eval_crop) > 0:
            crop = int(args.eval_crop)
        else:
            parser.error(f"--eval-crop {args.eval_crop}: use a positive "
                         "int or 'none'")
    import mmseg_incremental  # noqa: F401  (registers the components)
    summary = reevaluate(args.work_dir, args.eval_protocol, args.step, crop)
    out_dir = reevaluation_dir(args.work_dir, args.eval_protocol, crop)
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
