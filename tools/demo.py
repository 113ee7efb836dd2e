"""The demo: class-incremental VOC 15-1 on the embedded benchmark.

Generates the benchmark (once), pretrains the tiny backbone jointly on a
second generated benchmark (once: the paper's M_0 starts from
MSCOCO-pretrained weights, see ``mmseg_incremental/studies/pretrain.py``),
then runs every step of 15-1 (40 iterations a class at step 0, 80 per new
class after, the lr decaying over 20x the step as in the authors' L'_D and
EF scripts) with fine-tuning (FT), output distillation (L'_D) and EF+L'_D
-- step 0 is trained once and shared through the step-0 store -- and
prints the comparison table that shows forgetting and learning.
Re-running continues/reuses what is already done.

    python tools/demo.py --data-root data/embedded_voc \
        --work-dir work_dirs/demo
"""
import argparse
import os.path as osp
import time

from mmseg_incremental.synthetic_voc import generate_benchmark
from mmseg_incremental.studies.pretrain import (add_benchmark_arguments,
                                                benchmark_options)
from mmseg_incremental.studies.run_methods import run_methods
from mmseg_incremental.reporting import compare_runs, write_report

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'embedded')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/embedded_voc')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--task', default='15-1')
    parser.add_argument('--methods', nargs='+', default=['ft', 'ld', 'ef-ld'])
    parser.add_argument(
        '--images',
        type=int,
        default=4,
        help='val images in the Fig. 3-style picture')
    add_benchmark_arguments(parser, 40, 80)
    args = parser.parse_args()

    start = time.perf_counter()
    generate_benchmark(args.data_root)
    configs = [
        osp.join(CONFIGS, f'bench_{args.task}_{m}.py') for m in args.methods
    ]
    options = benchmark_options(args, configs[0])
    runs = run_methods(
        configs,
        args.work_dir,
        args.data_root,
        cfg_options=options,
        on_summary=write_report)
    print(compare_runs(runs, out_dir=args.work_dir, images=args.images))
    print(f'Demo finished in {time.perf_counter() - start:.0f} s; reports '
          f'in {args.work_dir}/*/report.md, comparison in '
          f'{args.work_dir}/comparison.md and comparison.png.')


if __name__ == '__main__':
    main()
