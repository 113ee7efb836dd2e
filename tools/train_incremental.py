"""Run every step of an incremental experiment.

    python tools/train_incremental.py configs/il/voc_19-1_ld.py
    python tools/train_incremental.py CONFIG --work-dir D --resume
    python tools/train_incremental.py CONFIG --check-splits
    python tools/train_incremental.py CONFIG --dry-run
    python tools/train_incremental.py CONFIG --dry-run --time-from D_OLD
    python tools/train_incremental.py CONFIG --dry-run \
        --cfg-options iters_per_class=10 data_root=/data/voc
    torchrun --nproc_per_node 4 tools/train_incremental.py CONFIG \
        --launcher pytorch

The experiment's settings (docs/settings.md) are checked before anything
runs: a misspelt setting or a value it does not allow stops the tool with
one error line, and so does every step's plan (configs, model and term
arguments, datasets) -- before step 0 trains.

Exit status: 0 done; 1 an error (one line: a config error, a diverged
step, a full disk, ...); 75 preempted (SIGTERM, SIGINT or SIGUSR1 saved a
checkpoint at the current iteration: run again with --resume).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction

from mmseg_incremental.experiment import (IncrementalExperiment, check_splits,
                                          describe_plan, init_distributed)
from mmseg_incremental.planning import check_settings
from mmseg_incremental.reporting import write_report
from mmseg_incremental.utils import load_config
from mmseg_incremental.utils.errors import RunStopped


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train all steps of a class-incremental task')
    parser.add_argument('config', help='experiment config file')
    parser.add_argument('--work-dir', help='experiment folder D')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='continue a stopped experiment in its work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. iters_per_class=10 (the '
        'settings: docs/settings.md)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--check-splits',
        action='store_true',
        help='count each step\'s training images, compare them with the '
        'authors\' VOC lists, and exit (no training)')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print every setting (value and source), each step\'s classes, '
        'image counts, iterations, lr, batch, teacher, init and (from a '
        'previous run) training time, and exit (no training)')
    parser.add_argument(
        '--time-from',
        metavar='WORK_DIR',
        help='with --dry-run: estimate each step\'s time from the s/iter '
        'logged in this work dir of a previous run, finished or not '
        '(default: the work dir itself, if it holds a run)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.time_from is not None:
        if not args.dry_run:
            parser.error('--time-from needs --dry-run')
        if not osp.isdir(args.time_from):
            parser.error(f'--time-from {args.time_from}: no such folder')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config)
    cli_keys = tuple(args.cfg_options or {})
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    try:
        check_settings(cfg, cli_keys)
    except ValueError as err:  # before anything runs or is written
        for line in str(err).splitlines():
            print(
                f'{osp.basename(sys.argv[0])}: error: {line}', file=sys.stderr)
        sys.exit(1)
    if args.check_splits:
        text, ok = check_splits(cfg)
        print(text)
        sys.exit(0 if ok else 1)
    work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs',
        osp.splitext(osp.basename(args.config))[0])
    try:
        if args.dry_run:
            print(
                describe_plan(cfg, osp.abspath(work_dir), args.time_from,
                              cli_keys))
            return
        init_distributed(args.launcher,
                         cfg.get('env_cfg', {}).get('dist_cfg'))
        IncrementalExperiment(
            cfg, work_dir, resume=args.resume, on_summary=write_report).run()
    except RunStopped as stop:
        # A config error, a diverged step, a preemption, a full disk: one
        # line (the step's log has it too), and the stop's exit status.
        print(f'{osp.basename(sys.argv[0])}: error: {stop}', file=sys.stderr)
        sys.exit(stop.exit_code)


if __name__ == '__main__':
    main()
