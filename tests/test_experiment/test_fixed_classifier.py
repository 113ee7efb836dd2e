"""classifier='fixed' (the authors' code): an output for every class from
step 0; planned, trained and evaluated end to end."""
import pytest
import torch
from mmengine.config import Config

from mmseg_incremental.experiment import (IncrementalExperiment,
                                          build_step_config)
from test_experiment.utils import load, tiny_cfg


def test_fixed_classifier_plan_and_run(embedded_voc, tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=1,
        classifier='fixed',
        step0_store=str(tmp_path / 'store'))
    s0 = build_step_config(cfg, 0, 'w')
    s1 = build_step_config(cfg, 1, 'w', 'prev.pth')
    assert s0.model.decode_head.num_classes == 21
    assert s1.model.decode_head.num_classes == 21
    assert s1.model.num_old_classes == 16
    summary = IncrementalExperiment(cfg, str(tmp_path / 'run')).run()
    for step in (0, 1):
        done = load(tmp_path / 'run' / f'step_{step}' / 'step_done.json')
        state = torch.load(done['checkpoint'], map_location='cpu')
        assert state['state_dict']['decode_head.aspp.0.weight'].shape[0] \
            == 21
    # Evaluated on the seen classes only (16, then 17 IoU entries).
    assert len(summary['steps'][0]['metrics']['IoU']) == 16
    assert len(summary['steps'][1]['metrics']['IoU']) == 17
    grow = build_step_config(
        tiny_cfg('bench_15-1_ld.py', embedded_voc), 1, 'w', 'p.pth')
    assert grow.model.decode_head.num_classes == 17
    cfg.classifier = 'shared'
    with pytest.raises(ValueError, match="classifier='shared'"):
        build_step_config(cfg, 0, 'w')
    step1 = Config.fromfile(
        str(tmp_path / 'run' / 'step_1' / 'step_config.py'))
    assert step1.model.num_old_classes == 16
