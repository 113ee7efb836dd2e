"""The authors'-code knob ablation: every knob builds a valid step config,
and the table holds each run's last-step values."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_incremental.experiment import build_step_config
from mmseg_incremental.reporting import RunSummary
from mmseg_incremental.reporting.ablation import ablation_table
from mmseg_incremental.studies.knob_ablation import KNOBS, run_knob_ablation
from test_experiment.utils import CFG_DIR, TINY


@pytest.mark.parametrize('label', list(KNOBS))
def test_every_knob_reaches_the_step_config(label):
    cfg = Config.fromfile(osp.join(CFG_DIR, 'bench_15-1_ef-ld.py'))
    cfg.merge_from_dict(KNOBS[label])
    step = build_step_config(cfg, 1, 'w', 'p.pth')
    model = step.model
    if label.startswith('(a)'):
        assert model.distill_terms.output.resolution == 'labels'
    elif label.startswith('(b)'):
        assert model.backbone.norm_eval is True
    elif label.startswith('(c)'):
        assert model.decode_head.num_classes == 21
    elif label.startswith('(d)'):
        assert step.param_scheduler[0].end == 20 * step.train_cfg.max_iters
    elif label.startswith('(e)'):
        assert model.data_preprocessor.std == [1.0, 1.0, 1.0]
    else:
        assert model.decode_head.num_classes == 17


def test_ablation_runs_and_tabulates(embedded_voc, tmp_path):
    knobs = {
        k: v
        for k, v in KNOBS.items() if not k.startswith(('(a)', '(b)', '(e)'))
    }
    configs = [osp.join(CFG_DIR, 'bench_15-1_ld.py')]
    runs = run_knob_ablation(
        configs, str(tmp_path), embedded_voc, cfg_options=TINY, knobs=knobs)
    assert [label for label, _, _ in runs] == list(knobs)
    table = ablation_table(runs).splitlines()
    assert table[0].split('|')[1:-1][1].strip() == "L'_D old"
    for (label, _, run_dir), line in zip(runs, table[2:]):
        last = RunSummary.load(run_dir).steps[-1].metrics
        cells = [c.strip() for c in line.split('|')[1:-1]]
        assert cells[0] == label
        assert cells[1:] == [
            f'{v:.1f}' for v in (last.mIoU_old, last.mIoU_new, last.mIoU)
        ]
