"""MiB and PLOP experiments on the embedded benchmark (tiny, two steps)."""
import glob
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmseg.registry import MODELS
from mmseg_incremental.engine.hooks.pseudo_label_hook import CHECKPOINT_KEY
from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.reporting import write_report
from test_experiment.utils import Killed as _Killed
from test_experiment.utils import load, tiny_cfg

MIB = 'bench_15-1_mib-overlapped.py'
PLOP = 'bench_15-1_plop-overlapped.py'
#: mmseg's DeepLab-v3 head on the tiny R18 (res5: 128 channels).
ASPP = {
    'model.decode_head':
    dict(
        type='ASPPHead',
        in_channels=128,
        channels=32,
        dilations=(1, 6, 12, 18))
}


def _finite(summary):
    for step in summary['steps']:
        for key in ('mIoU', 'mIoU_old'):
            assert math.isfinite(step['metrics'][key]), (step['step'], key)


def _logged(step_dir):
    """The keys of the training lines of a step's scalars.json."""
    keys = set()
    for path in glob.glob(osp.join(step_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                keys |= set(json.loads(line))
    return keys


def test_mib_and_plop_train_end_to_end(embedded_voc, tmp_path):
    store = str(tmp_path / 'store')  # M_0 trained once for both
    runs = {}
    for name, leaf in (('mib', MIB), ('plop', PLOP)):
        cfg = tiny_cfg(leaf, embedded_voc, max_step=1, step0_store=store)
        runs[name] = IncrementalExperiment(
            cfg, str(tmp_path / name), on_summary=write_report).run()
        _finite(runs[name])
    assert runs['mib']['method'] == 'MiB'
    assert runs['plop']['method'] == 'PLOP'
    assert (tmp_path / 'mib' / 'report.md').is_file()
    assert (tmp_path / 'plop' / 'report.md').is_file()

    mib = tmp_path / 'mib' / 'step_1'
    assert {'decode.loss_unbiased_ce',
            'distill.loss_unbiased_kd'} <= _logged(str(mib))
    plop = tmp_path / 'plop' / 'step_1'
    assert {'decode.loss_ce', 'decode.pseudo_factor',
            'distill.loss_pod'} <= _logged(str(plop))
    step_cfg = Config.fromfile(str(plop / 'step_config.py'))
    assert 'PseudoLabelHook' in [h.type for h in step_cfg.custom_hooks]
    assert step_cfg.model.pseudo_label.threshold == 0.001
    done = load(plop / 'step_done.json')
    checkpoint = torch.load(done['checkpoint'], map_location='cpu')
    assert len(checkpoint[CHECKPOINT_KEY]['thresholds']) == 17
    # Step k deploys as a stock EncoderDecoder (the step config's last
    # stage only) that loads M_k as it is.
    for run in (mib, plop):
        deploy = Config.fromfile(str(run / 'deploy_config.py'))
        for key in ('decode_loss', 'distill_pod', 'pseudo_label',
                    'distill_output'):
            assert key not in deploy.model
        assert 'PseudoLabelHook' not in [
            h.type for h in deploy.get('custom_hooks', [])
        ]
        model = MODELS.build(deploy.model)
        state = torch.load(
            load(run / 'step_done.json')['checkpoint'],
            map_location='cpu')['state_dict']
        model.load_state_dict(state, strict=True)


def test_plop_with_ef_on_mmseg_aspp_head(embedded_voc, tmp_path):
    cfg = tiny_cfg(
        PLOP,
        embedded_voc,
        max_step=1,
        **ASPP,
        **{'incremental.freeze_encoder': True})
    summary = IncrementalExperiment(cfg, str(tmp_path / 'aspp')).run()
    _finite(summary)
    step_cfg = Config.fromfile(
        str(tmp_path / 'aspp' / 'step_1' / 'step_config.py'))
    assert step_cfg.model.decode_head.type == 'ASPPHead'
    assert {'FreezeEncoderHook',
            'PseudoLabelHook'} <= {h.type
                                   for h in step_cfg.custom_hooks}
    assert 'distill.loss_pod' in _logged(str(tmp_path / 'aspp' / 'step_1'))


def test_plop_resume_reads_thresholds_and_gives_same_metrics(
        embedded_voc, tmp_path):
    overrides = dict(
        max_step=1,
        iters_per_class_incremental=4,
        step0_store=str(tmp_path / 'store'))
    full = IncrementalExperiment(
        tiny_cfg(PLOP, embedded_voc, **overrides),
        str(tmp_path / 'full')).run()
    cfg = tiny_cfg(PLOP, embedded_voc, **overrides)
    cfg.custom_hooks = [
        dict(type='KillAtIterHook', step_dir='step_1', at_iter=2)
    ]
    # Step 1 has 4 iterations, a checkpoint every 2: killed at 2, the
    # resumed step trains iterations 3-4 with the checkpoint's thresholds.
    with pytest.raises(_Killed):
        IncrementalExperiment(cfg, str(tmp_path / 'killed')).run()
    resumed = IncrementalExperiment(
        cfg, str(tmp_path / 'killed'), resume=True).run()
    for a, b in zip(full['steps'], resumed['steps']):
        assert a['metrics'] == b['metrics']
    logs = glob.glob(str(tmp_path / 'killed' / 'step_1' / '*' / '*.log'))
    text = ''.join(open(p).read() for p in logs)
    assert 'thresholds read from the checkpoint' in text


@pytest.mark.parametrize(
    'leaf', ['bench_15-5_mib-overlapped.py', 'bench_15-5_plop-overlapped.py'])
def test_15_5_leaves_train(embedded_voc, tmp_path, leaf):
    """The 15-5 leaves (five new classes in one step) run too."""
    summary = IncrementalExperiment(
        tiny_cfg(leaf, embedded_voc, max_step=1), str(tmp_path / 'run')).run()
    _finite(summary)
    assert summary['task'] == '15-5' and summary['setting'] == 'overlapped'
    assert [s['new_classes'] for s in summary['steps']
            ] == [list(range(16)), [16, 17, 18, 19, 20]]
