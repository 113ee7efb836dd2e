"""--dry-run: the plan of every step, without training or writing."""
import os.path as osp

from mmseg_incremental.experiment import describe_plan, train_split_sizes
from test_experiment.utils import ROOT, run_tool, tiny_cfg


def test_describe_plan_values(embedded_voc, tmp_path):
    cfg = tiny_cfg('bench_15-1_ef-ld.py', embedded_voc, iters_per_class=3)
    text = describe_plan(cfg, str(tmp_path / 'run'))
    counts = train_split_sizes(cfg)
    lines = text.splitlines()
    assert lines[0].startswith("voc 15-1: 6 steps, method EF+L'_D")
    assert 'step 1: new pottedplant (1); seen 17 classes' in lines
    for k, count in enumerate(counts):
        assert any(
            line.startswith(f'  images: {count} train, ')
            for line in lines), (k, count)
    assert '  48 iterations, lr 0.02 -> 0.0001 (PolyLR), batch 4 per ' \
        'process x 1 = 4' in lines
    assert '  3 iterations, lr 0.01 -> 0.0001 (PolyLR), batch 4 per ' \
        'process x 1 = 4' in lines
    teacher = osp.join(str(tmp_path / 'run'), 'step_0', 'iter_48.pth')
    assert f'  teacher {teacher} (M_0)' in lines
    assert not (tmp_path / 'run').exists()


def test_dry_run_flag_trains_nothing(embedded_voc, tmp_path):
    proc = run_tool('train_incremental.py',
                    osp.join(ROOT, 'configs/embedded/bench_19-1_ld.py'),
                    '--dry-run', '--work-dir', tmp_path / 'w', '--cfg-options',
                    f'data_root={embedded_voc}', 'lr_decay_horizon=20')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'step 1: new tvmonitor (1); seen 21 classes' in proc.stdout
    # 40 iterations of an 800-iteration poly from 0.01 to 1e-4:
    # (0.01 - 1e-4) * (1 - 40 / 800)^0.9 + 1e-4 = 0.00955.
    assert '40 iterations, lr 0.01 -> 0.00955 (PolyLR)' in proc.stdout
    assert not (tmp_path / 'w').exists()
