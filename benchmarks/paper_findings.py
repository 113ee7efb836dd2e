"""The paper's findings on the embedded benchmark, at a reduced schedule.

Runs VOC-format 19-1, 15-5 and 15-1 with FT, L'_D, EF+L'_D and L''_D
(sequential setting, the paper's losses) and FT and L'_D+L''_D in MiB's
flavour (disjoint, variant='mib', lambda=100), sharing M_0 between the
runs of a task, then writes one comparison table per task (old/new/all at
the last step, per-step mIoU for 15-1).

    python benchmarks/paper_findings.py --work-dir work_dirs/findings
"""
import argparse
import os.path as osp
import time

from mmengine.config import Config

from mmseg_incremental.datasets.embedded_benchmark import generate_benchmark
from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.experiment.compare import compare_runs

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = ['ft', 'ld', 'ef-ld', 'fd', 'mib-disjoint_ft', 'mib-disjoint_ilt']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/embedded_voc')
    parser.add_argument('--work-dir', default='work_dirs/findings')
    parser.add_argument('--tasks', nargs='+', default=['19-1', '15-5', '15-1'])
    parser.add_argument('--methods', nargs='+', default=METHODS)
    parser.add_argument('--iters-per-class', type=int, default=25)
    args = parser.parse_args()
    generate_benchmark(args.data_root)
    store = osp.join(args.work_dir, 'step0_store')
    tables = []
    for task in args.tasks:
        runs = []
        for method in args.methods:
            start = time.perf_counter()
            cfg = Config.fromfile(
                osp.join(ROOT, 'configs', 'embedded',
                         f'bench_{task}_{method}.py'))
            for split in ('train', 'val', 'test'):
                cfg[f'{split}_dataloader'].dataset.data_root = args.data_root
            cfg.step0_store = store
            cfg.iters_per_class = args.iters_per_class
            run_dir = osp.join(args.work_dir, f'{task}_{method}')
            IncrementalExperiment(cfg, run_dir, resume=True).run()
            print(f'{task} {method}: {time.perf_counter() - start:.0f} s')
            runs.append(run_dir)
        tables.append(compare_runs(
            runs, out_dir=osp.join(args.work_dir, f'compare_{task}')))
    text = '\n\n'.join(tables)
    with open(osp.join(args.work_dir, 'findings.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
