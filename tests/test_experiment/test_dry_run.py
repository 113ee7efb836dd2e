"""--dry-run: the plan of every step, without training or writing."""
import os.path as osp

from mmseg_incremental.experiment import describe_plan, train_split_sizes
from mmseg_incremental.planning import SETTINGS
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


def test_describe_plan_lists_every_setting_and_its_source(
        embedded_voc, tmp_path):
    cfg = tiny_cfg('bench_15-1_ef-ld.py', embedded_voc, iters_per_class=3)
    text = describe_plan(
        cfg,
        str(tmp_path / 'run'),
        cli_keys=['iters_per_class', 'data_root', 'model.data_preprocessor'])
    lines = text.splitlines()
    assert lines[1] == 'settings (value, source):'
    listed = lines[2:2 + len(SETTINGS)]
    assert [line.split(' = ')[0].strip()
            for line in listed] == [s.name for s in SETTINGS]
    expected = [
        "  task = '15-1' (config)",
        '  iters_per_class = 3 (--cfg-options)',
        f'  data_root = {embedded_voc!r} (--cfg-options)',
        '  lr_step0 = 0.02 (config)',
        '  total_batch_size = 4 (config)',
        "  method = \"EF+L'_D\" (config)",
        '  amp = None (default)',
        "  classifier = 'grow' (default)",
        '  lr_decay_horizon = 1.0 (default)',
        '  val_batch_size = 1 (default)',
    ]
    for line in expected:
        assert line in listed, line
    # Without the command line's keys every value is the config's.
    plain = describe_plan(cfg, str(tmp_path / 'run')).splitlines()
    assert '  iters_per_class = 3 (config)' in plain


def test_dry_run_flag_trains_nothing(embedded_voc, tmp_path):
    proc = run_tool('train_incremental.py',
                    osp.join(ROOT, 'configs/embedded/bench_19-1_ld.py'),
                    '--dry-run', '--work-dir', tmp_path / 'w', '--cfg-options',
                    f'data_root={embedded_voc}', 'lr_decay_horizon=20')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'step 1: new tvmonitor (1); seen 21 classes' in proc.stdout
    lines = proc.stdout.splitlines()
    assert f'  data_root = {embedded_voc!r} (--cfg-options)' in lines
    assert '  lr_decay_horizon = 20 (--cfg-options)' in lines
    assert '  iters_per_class = 40 (config)' in lines
    assert '  amp = None (default)' in lines
    # 40 iterations of an 800-iteration poly from 0.01 to 1e-4:
    # (0.01 - 1e-4) * (1 - 40 / 800)^0.9 + 1e-4 = 0.00955.
    assert '40 iterations, lr 0.01 -> 0.00955 (PolyLR)' in proc.stdout
    assert not (tmp_path / 'w').exists()


def test_dry_run_refuses_a_bad_value(tmp_path):
    proc = run_tool('train_incremental.py',
                    osp.join(ROOT, 'configs/embedded/bench_19-1_ld.py'),
                    '--dry-run', '--work-dir', tmp_path / 'w', '--cfg-options',
                    'iters_per_class=0')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        'train_incremental.py: error: iters_per_class=0 is invalid; use an '
        'int >= 1 (docs/settings.md).')
    assert not (tmp_path / 'w').exists()
