"""Schedules are patched, not replaced: a user's warmup survives."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_incremental.experiment import (IncrementalExperiment,
                                          build_step_config)
from mmseg_incremental.planning.schedule import patch_schedule
from test_experiment.utils import ROOT, tiny_cfg

WARMUP = dict(
    type='LinearLR', start_factor=0.1, begin=0, end=2, by_epoch=False)


def _cfg(schedulers, max_iters=1000):
    return Config(
        dict(
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            param_scheduler=schedulers))


def test_main_scheduler_stretched_warmup_kept():
    cfg = _cfg([
        WARMUP,
        dict(
            type='PolyLR',
            eta_min=0.0,
            power=0.9,
            begin=2,
            end=1000,
            by_epoch=False),
        dict(
            type='CosineAnnealingLR',
            T_max=1000,
            begin=0,
            by_epoch=False,
            eta_min=0.0),
    ])
    patch_schedule(cfg, iters=40, lr=5e-5, lr_min=1e-6)
    warmup, poly, cosine = cfg.param_scheduler
    assert warmup == WARMUP  # untouched
    assert (poly.begin, poly.end, poly.eta_min, poly.power) == \
        (2, 40, 1e-6, 0.9)
    assert (cosine.end, cosine.T_max, cosine.eta_min) == (40, 40, 1e-6)
    assert cfg.train_cfg.max_iters == 40
    assert cfg.train_cfg.val_interval == 41
    assert cfg.train_cfg.val_begin == 41  # the experiment validates after
    assert cfg.optim_wrapper.optimizer.lr == 5e-5


def test_short_step_cuts_the_warmup_and_rejects_epochs():
    cfg = _cfg([dict(WARMUP, end=500)])
    patch_schedule(cfg, iters=100, lr=1.0, lr_min=0.0)
    assert cfg.param_scheduler[0].end == 100
    with pytest.raises(ValueError, match='by_epoch=False'):
        patch_schedule(_cfg([dict(type='PolyLR', end=10)]), 5, 1.0, 0.0)
    with pytest.raises(ValueError, match='begins at iteration 8'):
        patch_schedule(
            _cfg([dict(type='PolyLR', begin=8, by_epoch=False)]), 5, 1.0, 0.0)


def test_users_warmup_reaches_every_step_config(embedded_voc, tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=1,
        iters_per_class_incremental=3,
        step0_store=str(tmp_path / 'store'))
    cfg.param_scheduler = [
        WARMUP,
        dict(
            type='PolyLR',
            eta_min=0.0,
            power=0.9,
            begin=2,
            end=cfg.train_cfg.max_iters,
            by_epoch=False)
    ]
    IncrementalExperiment(cfg, str(tmp_path / 'run')).run()
    for step, iters, lr in ((0, 16, cfg.lr_step0), (1, 3, cfg.lr_incremental)):
        step_cfg = Config.fromfile(
            str(tmp_path / 'run' / f'step_{step}' / 'step_config.py'))
        warmup, poly = step_cfg.param_scheduler
        assert warmup.type == 'LinearLR' and warmup.end == 2
        assert warmup.start_factor == 0.1
        assert (poly.begin, poly.end, poly.eta_min) == (2, iters, cfg.lr_min)
        assert step_cfg.optim_wrapper.optimizer.lr == lr
        assert step_cfg.train_cfg.max_iters == iters


def test_authors_ld1_lr_horizon_keeps_the_lr_near_5e5():
    """lr_decay_horizon=20 (the authors' L'_D/EF scripts: poly over 20,000
    iterations, 1,000 run): mmengine's PolyLR reaches ~4.78e-5 after the
    step, as TF's polynomial_decay((5e-5 - 1e-6) 0.95^0.9 + 1e-6)."""
    import torch
    from mmengine.optim.scheduler import PolyLR

    cfg = Config.fromfile(osp.join(ROOT, 'configs/il/voc_19-1_ld.py'))
    cfg.lr_decay_horizon = 20
    step1 = build_step_config(cfg, 1, 'w', 'prev.pth')
    step0 = build_step_config(cfg, 0, 'w')
    (poly, ) = step1.param_scheduler
    assert (step1.train_cfg.max_iters, poly.end) == (1000, 20000)
    assert step0.param_scheduler[0].end == 20000  # step 0 decays fully

    param = torch.nn.Parameter(torch.zeros(1))
    optim = torch.optim.SGD([param], lr=step1.optim_wrapper.optimizer.lr)
    sched = PolyLR(
        optim,
        eta_min=poly.eta_min,
        power=poly.power,
        begin=poly.begin,
        end=poly.end,
        by_epoch=False)
    for _ in range(step1.train_cfg.max_iters):
        optim.step()
        sched.step()
    expected = (5e-5 - 1e-6) * (1 - 1000 / 20000)**0.9 + 1e-6
    # mmengine's PolyLR is the chained form of the same curve.
    assert optim.param_groups[0]['lr'] == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(4.78e-5, abs=5e-8)
    # Our default decays fully within the step; the paper row (authors'
    # LD1 script) over 20x the step.
    for flavour, end in (('ours/', 1000), ('', 20000)):
        assert build_step_config(
            Config.fromfile(
                osp.join(ROOT, f'configs/il/{flavour}voc_19-1_ld.py')), 1, 'w',
            'p.pth').param_scheduler[0].end == end
    with pytest.raises(ValueError, match='lr_decay_horizon >= 1'):
        patch_schedule(
            _cfg([dict(type='PolyLR', by_epoch=False)]),
            10,
            1.0,
            0.0,
            horizon=5)
