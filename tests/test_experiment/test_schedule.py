"""Schedules are patched, not replaced: a user's warmup survives."""
import pytest
from mmengine.config import Config

from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.planning.schedule import patch_schedule
from test_experiment.utils import tiny_cfg

WARMUP = dict(type='LinearLR', start_factor=0.1, begin=0, end=2,
              by_epoch=False)


def _cfg(schedulers, max_iters=1000):
    return Config(dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        param_scheduler=schedulers))


def test_main_scheduler_stretched_warmup_kept():
    cfg = _cfg([
        WARMUP,
        dict(type='PolyLR', eta_min=0.0, power=0.9, begin=2, end=1000,
             by_epoch=False),
        dict(type='CosineAnnealingLR', T_max=1000, begin=0, by_epoch=False,
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
            _cfg([dict(type='PolyLR', begin=8, by_epoch=False)]), 5, 1.0,
            0.0)


def test_users_warmup_reaches_every_step_config(embedded_voc, tmp_path):
    cfg = tiny_cfg('bench_15-1_ld.py', embedded_voc, max_step=1,
                   iters_per_class=3, step0_store=str(tmp_path / 'store'))
    cfg.param_scheduler = [
        WARMUP,
        dict(type='PolyLR', eta_min=0.0, power=0.9, begin=2,
             end=cfg.train_cfg.max_iters, by_epoch=False)
    ]
    IncrementalExperiment(cfg, str(tmp_path / 'run')).run()
    for step, iters, lr in ((0, 48, cfg.lr_step0), (1, 3, cfg.lr_incremental)):
        step_cfg = Config.fromfile(
            str(tmp_path / 'run' / f'step_{step}' / 'step_config.py'))
        warmup, poly = step_cfg.param_scheduler
        assert warmup.type == 'LinearLR' and warmup.end == 2
        assert warmup.start_factor == 0.1
        assert (poly.begin, poly.end, poly.eta_min) == (2, iters, cfg.lr_min)
        assert step_cfg.optim_wrapper.optimizer.lr == lr
        assert step_cfg.train_cfg.max_iters == iters
