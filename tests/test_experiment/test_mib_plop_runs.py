"""MiB and PLOP experiments on the embedded benchmark (tiny, two steps).

Their metrics are checked against values computed apart from the run: the
step's checkpoint evaluated by mmseg's ``init_model``/``inference_model``
and numpy (:func:`independent_miou`), and the M_0 of the session's step-0
store (the PLOP runs here share the overlapped 15-x M_0, the MiB runs
theirs, trained with void as background; whichever test trained it)."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmseg.registry import MODELS
from mmseg_incremental.engine.hooks.pseudo_label_hook import CHECKPOINT_KEY
from mmseg_incremental.experiment import (IncrementalExperiment, Step0Store,
                                          step0_fingerprint_source)
from mmseg_incremental.reporting import write_report
from test_experiment.utils import Killed as _Killed
from test_experiment.utils import (assert_same_weights, independent_miou, load,
                                   state_dict, tiny_cfg)

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
#: |mIoU - independent mIoU| allowed (the same predictions; the two sum
#: the same integer counts in another order).
MIOU_TOL = 0.01


def _check_m0(work_dir, store, cfg):
    """Step 0 ran the store's M_0 for ``cfg``: its checkpoint is that entry
    (reused) or holds the same tensors, bit for bit (the run that trained
    and published it). Returns the entry."""
    entry = Step0Store(store).lookup(step0_fingerprint_source(cfg))
    assert entry is not None, f'no M_0 for the config in {store}'
    done = load(osp.join(work_dir, 'step_0', 'step_done.json'))
    if done.get('reused'):
        assert done['checkpoint'] == entry
    else:
        assert_same_weights(done['checkpoint'], entry)
    return entry


def _check_metrics(work_dir, summary, steps=(0, 1)):
    """Each step's mIoU equals the independent evaluation of its checkpoint
    under the run's protocol, on the step's val split."""
    protocol = summary['eval_protocol']
    for k in steps:
        step_dir = osp.join(work_dir, f'step_{k}')
        done = load(osp.join(step_dir, 'step_done.json'))
        expected, _ = independent_miou(step_dir, done['checkpoint'], protocol)
        got = summary['steps'][k]['metrics']['mIoU']
        assert got == pytest.approx(expected, abs=MIOU_TOL), (k, protocol)


def _logged(step_dir):
    """The keys of the training lines of a step's scalars.json."""
    keys = set()
    for path in glob.glob(osp.join(step_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                keys |= set(json.loads(line))
    return keys


def test_mib_and_plop_train_end_to_end(embedded_voc, step0_store, tmp_path):
    runs, cfgs = {}, {}
    for name, leaf in (('mib', MIB), ('plop', PLOP)):
        cfgs[name] = tiny_cfg(
            leaf, embedded_voc, max_step=1, step0_store=step0_store)
        runs[name] = IncrementalExperiment(
            cfgs[name], str(tmp_path / name), on_summary=write_report).run()
    # MiB trains void as background from step 0 on (void_as_background,
    # MiB's dataset/voc.py): its M_0 is its own, not PLOP's.
    entries = {
        name: _check_m0(str(tmp_path / name), step0_store, cfgs[name])
        for name in runs
    }
    assert entries['mib'] != entries['plop']
    # Every step's metrics under the method's own protocol.
    assert runs['mib']['eval_protocol'] == 'mask_unseen'
    assert runs['plop']['eval_protocol'] == 'unseen_as_background'
    for name in runs:
        _check_metrics(str(tmp_path / name), runs[name])
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
    assert step_cfg.model.distill_terms.pseudo_label.threshold == 0.001
    done = load(plop / 'step_done.json')
    checkpoint = torch.load(done['checkpoint'], map_location='cpu')
    assert len(checkpoint[CHECKPOINT_KEY]['thresholds']) == 17
    # Step k deploys as a stock EncoderDecoder (the step config's last
    # stage only) that loads M_k as it is.
    for run in (mib, plop):
        deploy = Config.fromfile(str(run / 'deploy_config.py'))
        for key in ('distill_terms', 'teacher_checkpoint',
                    'new_class_init'):
            assert key not in deploy.model
        assert deploy.model.type == 'EncoderDecoder'
        assert 'PseudoLabelHook' not in [
            h.type for h in deploy.get('custom_hooks', [])
        ]
        model = MODELS.build(deploy.model)
        state = torch.load(
            load(run / 'step_done.json')['checkpoint'],
            map_location='cpu')['state_dict']
        model.load_state_dict(state, strict=True)


def test_plop_with_ef_on_mmseg_aspp_head(embedded_voc, step0_store, tmp_path):
    cfg = tiny_cfg(
        PLOP,
        embedded_voc,
        max_step=1,
        step0_store=step0_store,
        **ASPP,
        **{'incremental.freeze_encoder': True})
    summary = IncrementalExperiment(cfg, str(tmp_path / 'aspp')).run()
    _check_m0(str(tmp_path / 'aspp'), step0_store, cfg)
    _check_metrics(str(tmp_path / 'aspp'), summary, steps=(1, ))
    # EF: M_1's encoder is M_0's, bit for bit.
    m0, m1 = (
        state_dict(
            load(tmp_path / 'aspp' / f'step_{k}' /
                 'step_done.json')['checkpoint']) for k in (0, 1))
    backbone = [k for k in m0 if k.startswith('backbone.')]
    assert backbone and all(torch.equal(m0[k], m1[k]) for k in backbone)
    step_cfg = Config.fromfile(
        str(tmp_path / 'aspp' / 'step_1' / 'step_config.py'))
    assert step_cfg.model.decode_head.type == 'ASPPHead'
    assert {'FreezeEncoderHook',
            'PseudoLabelHook'} <= {h.type
                                   for h in step_cfg.custom_hooks}
    assert 'distill.loss_pod' in _logged(str(tmp_path / 'aspp' / 'step_1'))


def test_plop_resume_reads_thresholds_and_gives_same_metrics(
        embedded_voc, step0_store, tmp_path):
    overrides = dict(
        max_step=1, iters_per_class_incremental=4, step0_store=step0_store)
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
def test_15_5_leaves_train(embedded_voc, step0_store, tmp_path, leaf):
    """The 15-5 leaves (five new classes in one step) run too, from the
    M_0 of the 15-1 leaves (15-5 and 15-1 share step 0)."""
    summary = IncrementalExperiment(
        tiny_cfg(leaf, embedded_voc, max_step=1, step0_store=step0_store),
        str(tmp_path / 'run')).run()
    assert summary['task'] == '15-5' and summary['setting'] == 'overlapped'
    assert [s['new_classes'] for s in summary['steps']
            ] == [list(range(16)), [16, 17, 18, 19, 20]]
    leaf_15_1 = leaf.replace('15-5', '15-1')
    _check_m0(
        str(tmp_path / 'run'), step0_store,
        tiny_cfg(leaf_15_1, embedded_voc, max_step=1, step0_store=step0_store))
    _check_metrics(str(tmp_path / 'run'), summary, steps=(1, ))
