"""The paper's findings on the embedded benchmark, at a reduced schedule.

Runs VOC-format 19-1, 15-5 and 15-1 with FT, L'_D, EF+L'_D and L''_D
(sequential setting, the paper's losses) and FT and L'_D+L''_D in MiB's
flavour (disjoint, variant='mib', lambda=100), sharing M_0 between the
runs of a task, then writes one comparison table per task (old/new/all at
the last step, per-step mIoU for 15-1) and all of them to
``<work-dir>/findings.md``. As in the demo, M_0 starts from a backbone
pretrained on a second generated benchmark, and the incremental lr decays
over 20x the step (the authors' LD1 scripts; L''_D: within the step, LD2).

    python tools/paper_findings.py --data-root data/embedded_voc \
        --work-dir work_dirs/findings
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
METHODS = ['ft', 'ld', 'ef-ld', 'fd', 'mib-disjoint_ft', 'mib-disjoint_ilt']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/embedded_voc')
    parser.add_argument('--work-dir', default='work_dirs/findings')
    parser.add_argument('--tasks', nargs='+', default=['19-1', '15-5', '15-1'])
    parser.add_argument('--methods', nargs='+', default=METHODS)
    add_benchmark_arguments(parser, 25, 50)
    args = parser.parse_args()

    generate_benchmark(args.data_root)
    options = benchmark_options(args, osp.join(CONFIGS, 'bench_15-1_ft.py'))
    tables = []
    for task in args.tasks:
        configs = [
            osp.join(CONFIGS, f'bench_{task}_{m}.py') for m in args.methods
        ]
        runs = []
        for config, method in zip(configs, args.methods):
            # The authors' L''_D script decays the lr within the step
            # (codes/LD2), their L'_D and EF scripts over 20x (codes/LD1).
            horizon = 1 if method == 'fd' else options['lr_decay_horizon']
            runs += run_methods([config],
                                args.work_dir,
                                args.data_root,
                                cfg_options=dict(
                                    options, lr_decay_horizon=horizon),
                                on_summary=write_report)
        tables.append(
            compare_runs(
                runs, out_dir=osp.join(args.work_dir, f'compare_{task}')))
    text = '\n\n'.join(tables)
    with open(osp.join(args.work_dir, 'findings.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
