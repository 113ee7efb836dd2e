"""ILT (both flavours), MiB, PLOP, DKD, DKD-M and FT on the embedded
benchmark.

Runs VOC-format 15-1 and 15-5 in the ``overlapped`` setting (MiB's and
PLOP's) with FT, ILT as the paper defines it (L'_D, ``variant='ilt'``),
ILT as MiB re-ran it (L'_D+L''_D, ``variant='mib'``, lambda 100), MiB,
PLOP, DKD and DKD-M (DKD with a 100-image exemplar memory; DKD's rows
train their own M_0: sigmoid classifiers), on the schedule of
``tools/paper_findings.py`` (the pretrained backbone, 25 iterations a
class at step 0, 50 per new class after, the lr decaying over 20x the
step), sharing M_0 per task (MiB's rows train their
own: void as background from step 0, ``void_as_background``); prints one
comparison table per task and writes ``<work-dir>/mib_plop.md``. Each
method keeps its own evaluation protocol; after the last step no class is
unseen, so the final numbers compare across them.

    OMP_NUM_THREADS=1 python tools/mib_plop_table.py \
        --data-root data/embedded_voc --work-dir work_dirs/mib_plop
"""
import argparse
import os.path as osp

from mmseg_incremental.synthetic_voc import generate_benchmark
from mmseg_incremental.studies.pretrain import (add_benchmark_arguments,
                                                benchmark_options)
from mmseg_incremental.studies.run_methods import run_methods
from mmseg_incremental.reporting import compare_runs, write_report

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'embedded')
#: config suffix per method (the ILT configs run under `overlapped`).
METHODS = [
    'ft', 'ld', 'mib-disjoint_ilt', 'mib-overlapped', 'plop-overlapped',
    'dkd-overlapped', 'dkd-m-overlapped'
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/embedded_voc')
    parser.add_argument('--work-dir', default='work_dirs/mib_plop')
    parser.add_argument('--tasks', nargs='+', default=['15-1', '15-5'])
    add_benchmark_arguments(parser, 25, 50)
    args = parser.parse_args()

    generate_benchmark(args.data_root)
    options = benchmark_options(args, osp.join(CONFIGS, 'bench_15-1_ft.py'))
    options['setting'] = 'overlapped'
    tables = []
    for task in args.tasks:
        configs = [osp.join(CONFIGS, f'bench_{task}_{m}.py') for m in METHODS]
        runs = run_methods(
            configs,
            osp.join(args.work_dir, task),
            args.data_root,
            cfg_options=options,
            on_summary=write_report)
        tables.append(
            compare_runs(runs, out_dir=osp.join(args.work_dir, task)))
    text = '\n\n'.join(tables)
    with open(osp.join(args.work_dir, 'mib_plop.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
