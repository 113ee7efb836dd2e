"""The authors'-code knobs one at a time on the embedded benchmark.

    python tools/ablate_knobs.py --work-dir work_dirs/knobs

Runs VOC-format 15-1 with L'_D and EF+L'_D, with our defaults and with each
knob of docs/methods.md's "authors' code" table alone, and prints the final
old / new / all mIoU.
"""
import argparse
import os.path as osp

from mmseg_incremental.synthetic_voc import generate_benchmark
from mmseg_incremental.studies.knob_ablation import run_knob_ablation
from mmseg_incremental.reporting import write_report
from mmseg_incremental.reporting.ablation import ablation_table

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/embedded_voc')
    parser.add_argument('--work-dir', default='work_dirs/knobs')
    parser.add_argument('--task', default='15-1')
    parser.add_argument('--methods', nargs='+', default=['ld', 'ef-ld'])
    parser.add_argument('--iters-per-class', type=int, default=40)
    args = parser.parse_args()
    generate_benchmark(args.data_root)
    configs = [
        osp.join(ROOT, 'configs', 'embedded', f'bench_{args.task}_{m}.py')
        for m in args.methods
    ]
    runs = run_knob_ablation(
        configs,
        args.work_dir,
        args.data_root,
        cfg_options=dict(iters_per_class=args.iters_per_class),
        on_summary=write_report)
    table = ablation_table(runs)
    with open(osp.join(args.work_dir, 'ablation.md'), 'w') as f:
        f.write(table + '\n')
    print(table)


if __name__ == '__main__':
    main()
