"""End-to-end experiments on the embedded benchmark with tiny schedules."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmseg_incremental.experiment import (IncrementalExperiment,
                                          build_step_config)
from mmseg_incremental.reporting import write_report
from test_experiment.utils import Killed as _Killed
from test_experiment.utils import assert_same_weights, load, tiny_cfg


def test_steps_chain_teachers_and_summary(embedded_voc, step0_store, tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ld.py', embedded_voc, max_step=2, step0_store=step0_store)
    summary = IncrementalExperiment(
        cfg, str(tmp_path / 'ld'), on_summary=write_report).run()
    assert [s['step'] for s in summary['steps']] == [0, 1, 2]
    assert summary['method'] == "L'_D"
    assert summary['steps'][2]['new_classes'] == [17]
    assert summary['steps'][2]['seen_classes'] == list(range(18))
    on_disk = load(tmp_path / 'ld' / 'summary.json')
    assert on_disk == summary
    for k in (1, 2):
        step_cfg = Config.fromfile(
            str(tmp_path / 'ld' / f'step_{k}' / 'step_config.py'))
        prev = load(tmp_path / 'ld' / f'step_{k - 1}' / 'step_done.json')
        assert step_cfg.model.teacher_checkpoint == prev['checkpoint']
        assert step_cfg.model.decode_head.num_classes == 16 + k
        assert step_cfg.train_cfg.max_iters == 1
        done = load(tmp_path / 'ld' / f'step_{k}' / 'step_done.json')
        assert summary['steps'][k]['metrics']['mIoU'] == pytest.approx(
            done['metrics']['mIoU'])
        ckpt = torch.load(done['checkpoint'], map_location='cpu')
        keys = ckpt['state_dict'].keys()
        assert not any(k.startswith('teacher') for k in keys)
        assert ckpt['state_dict']['decode_head.aspp.0.weight'].shape[0] == \
            16 + k
    assert (tmp_path / 'ld' / 'report.md').is_file()
    # Every step's Runner logs into its own folder (mmengine would hand the
    # first step's visualizer, and its vis_data/ folder, to later Runners).
    for k in (0, 1, 2):
        assert list(
            (tmp_path / 'ld' / f'step_{k}').glob('*/vis_data/config.py')), k


def test_step0_is_reused_not_retrained(embedded_voc, tiny_m0, tmp_path):
    store = str(tmp_path / 'store')  # FT trains M_0 here, L'_D reuses it
    ft = tiny_cfg(
        'bench_15-1_ft.py', embedded_voc, max_step=1, step0_store=store)
    ld = tiny_cfg(
        'bench_15-1_ld.py', embedded_voc, max_step=1, step0_store=store)
    a = IncrementalExperiment(ft, str(tmp_path / 'ft')).run()
    b = IncrementalExperiment(ld, str(tmp_path / 'ld')).run()
    done = load(tmp_path / 'ld' / 'step_0' / 'step_done.json')
    assert done.get('reused') is True
    assert done['checkpoint'].startswith(store)
    assert not any(
        f.startswith('iter_') for f in os.listdir(tmp_path / 'ld' / 'step_0'))
    assert a['steps'][0]['metrics'] == b['steps'][0]['metrics']
    # Trained again here, M_0 is the session's, bit for bit (training is
    # deterministic on the CPU), and so are its metrics.
    trained = load(tmp_path / 'ft' / 'step_0' / 'step_done.json')
    assert 'reused' not in trained
    assert_same_weights(trained['checkpoint'], tiny_m0['checkpoint'])
    assert a['steps'][0]['metrics'] == tiny_m0['metrics']
    # A different step-0 schedule is not reused.
    other = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=0,
        step0_store=store,
        lr_step0=0.5)
    IncrementalExperiment(other, str(tmp_path / 'other')).run()
    assert 'reused' not in load(tmp_path / 'other' / 'step_0' /
                                'step_done.json')


def test_work_dir_of_another_config_is_refused(embedded_voc, step0_store,
                                               tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ft.py', embedded_voc, max_step=0, step0_store=step0_store)
    IncrementalExperiment(cfg, str(tmp_path / 'd')).run()
    before = sorted(os.listdir(tmp_path / 'd'))
    # Another step 0 (its schedule) than the one finished there.
    other = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=0,
        iters_per_class=2,
        step0_store=step0_store)
    with pytest.raises(RuntimeError, match='another config'):
        IncrementalExperiment(other, str(tmp_path / 'd'), resume=True).run()
    with pytest.raises(RuntimeError, match='--resume'):
        IncrementalExperiment(cfg, str(tmp_path / 'd')).run()
    assert sorted(os.listdir(tmp_path / 'd')) == before


def test_config_fixed_after_finished_steps_continues(embedded_voc,
                                                     step0_store, tmp_path):
    """A config changed only in steps that have not begun (a fixed config
    error) continues the work dir with --resume; one changed in a finished
    step does not."""
    d = str(tmp_path / 'd')
    done = tiny_cfg(
        'bench_15-1_ft.py', embedded_voc, max_step=0, step0_store=step0_store)
    IncrementalExperiment(done, d).run()
    # FT and L'_D plan the same step 0: step 1 (not begun) is what changes.
    fixed = tiny_cfg(
        'bench_15-1_ld.py', embedded_voc, max_step=1, step0_store=step0_store,
        iters_per_class_incremental=1)
    with pytest.raises(RuntimeError, match='--resume'):
        IncrementalExperiment(fixed, d).run()
    summary = IncrementalExperiment(fixed, d, resume=True).run()
    assert [s['step'] for s in summary['steps']] == [0, 1]
    # Provenance with the numbers: code, versions, device, seed, data.
    prov = load(osp.join(d, 'summary.json'))['provenance']
    assert prov['torch'] == torch.__version__ and prov['world_size'] == 1
    assert prov['device'] == 'cpu' and len(prov['data']) == 64
    assert prov['git_commit'] is None or len(prov['git_commit']) == 40
    meta = load(osp.join(d, 'experiment.json'))
    assert len(meta['steps']) == 2 and meta['config'] == fixed.filename
    # Now step 1 is finished: a change of step 1 is refused.
    changed = tiny_cfg(
        'bench_15-1_ld.py', embedded_voc, max_step=1, step0_store=step0_store,
        iters_per_class_incremental=2)
    with pytest.raises(RuntimeError, match='another config'):
        IncrementalExperiment(changed, d, resume=True).run()


def test_resume_after_kill_gives_same_metrics(embedded_voc, step0_store,
                                              tmp_path):
    # Step 1 of 4 iterations, a checkpoint every 2; M_0 (the session's) is
    # the same for both runs, so step 1 starts from the same teacher.
    overrides = dict(
        max_step=1, iters_per_class_incremental=4, step0_store=step0_store)
    full = IncrementalExperiment(
        tiny_cfg('bench_15-1_ld.py', embedded_voc, **overrides),
        str(tmp_path / 'full')).run()

    cfg = tiny_cfg('bench_15-1_ld.py', embedded_voc, **overrides)
    cfg.custom_hooks = [
        dict(type='KillAtIterHook', step_dir='step_1', at_iter=2)
    ]
    with pytest.raises(_Killed):
        IncrementalExperiment(cfg, str(tmp_path / 'killed')).run()
    assert (tmp_path / 'killed' / 'step_1' / 'last_checkpoint').is_file()
    assert not (tmp_path / 'killed' / 'step_1' / 'step_done.json').exists()
    step0 = load(tmp_path / 'killed' / 'step_0' / 'step_done.json')
    resumed = IncrementalExperiment(
        cfg, str(tmp_path / 'killed'), resume=True).run()
    assert load(tmp_path / 'killed' / 'step_0' / 'step_done.json') == step0
    for a, b in zip(full['steps'], resumed['steps']):
        assert a['metrics'] == b['metrics']


def test_step_configs_follow_the_schedule(embedded_voc):
    cfg = tiny_cfg('bench_15-5_ef-ld.py', embedded_voc, iters_per_class=3)
    s0 = build_step_config(cfg, 0, work_dir='w0')
    s1 = build_step_config(cfg, 1, work_dir='w1', teacher_checkpoint='t.pth')
    assert s0.model.type == 'EncoderDecoder'
    assert s0.train_cfg.max_iters == 16 * 3
    assert s1.train_cfg.max_iters == 5 * 3
    assert s0.optim_wrapper.optimizer.lr == cfg.lr_step0
    assert s1.optim_wrapper.optimizer.lr == cfg.lr_incremental
    assert s1.param_scheduler[0].end == 15
    assert s1.model.type == 'IncrementalEncoderDecoder'
    assert s1.model.freeze_encoder is True
    assert s1.model.num_old_classes == 16
    assert s1.model.decode_head.num_classes == 21
    assert s1.train_dataloader.dataset.step == 1
    assert s1.val_dataloader.dataset.eval_protocol == 'seen_only'
    assert 'task' not in s1 and 'incremental' not in s1
    with pytest.raises(ValueError, match='teacher'):
        build_step_config(cfg, 1, work_dir='w1')
