"""Per-step metrics through the config's visualizer backends, one series
across steps in ``D/vis_data`` (x = step k)."""
import glob
import importlib.util
import json
import sys

import pytest

from mmseg_incremental.experiment import IncrementalExperiment, describe_plan
from mmseg_incremental.experiment.visualizer import step_scalars
from test_experiment.utils import load, tiny_cfg

TENSORBOARD = importlib.util.find_spec('tensorboard') is not None
BACKENDS = 'visualizer.vis_backends'
LOCAL_AND_TB = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend')
]


def _expected(step):
    """summary.json's metrics of a step under their scalar names (nulls
    have no point)."""
    metrics = dict(step['metrics'])
    out = {k: v for k, v in metrics.items() if k != 'IoU' and v is not None}
    out.update({f'IoU/{k}': v for k, v in metrics['IoU'].items()})
    return out


def test_step_scalars_hand_made():
    step = dict(
        step=1,
        metrics=dict(
            mIoU=40.0,
            mIoU_old=50.0,
            mIoU_new=None,
            hIoU=None,
            mPA=None,
            mCA=None,
            mIoU_old_nobg=None,
            mIoU_step=None,
            IoU=dict(background=90.0, cat=None, dog=10.0)))
    assert step_scalars(step) == {
        'mIoU': 40.0,
        'mIoU_old': 50.0,
        'IoU/background': 90.0,
        'IoU/dog': 10.0
    }


def test_local_backend_series_equals_summary(embedded_voc, step0_store,
                                             tmp_path):
    work_dir = tmp_path / 'run'
    cfg = tiny_cfg(
        'bench_15-1_ld.py', embedded_voc, max_step=1, step0_store=step0_store)
    assert cfg.visualizer.vis_backends == [dict(type='LocalVisBackend')]
    IncrementalExperiment(cfg, str(work_dir)).run()
    summary = load(work_dir / 'summary.json')
    path = work_dir / 'vis_data' / 'scalars.json'
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    assert [line.pop('step') for line in lines] == [0, 1]
    for line, step in zip(lines, summary['steps']):
        assert line == _expected(step)
    assert 'mIoU_new' not in lines[0]  # null at step 0
    assert lines[1]['mIoU_new'] == summary['steps'][1]['metrics']['mIoU_new']
    assert len([k for k in lines[1] if k.startswith('IoU/')]) == 17
    # A resumed (here: finished) experiment does not write its kept steps
    # again.
    IncrementalExperiment(cfg, str(work_dir), resume=True).run()
    with open(path) as f:
        assert len(f.readlines()) == 2


@pytest.mark.skipif(
    not TENSORBOARD, reason='tensorboard is not installed (optional extra)')
def test_tensorboard_series_equals_summary(embedded_voc, step0_store,
                                           tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    work_dir = tmp_path / 'run'
    cfg = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=1,
        step0_store=step0_store,
        **{BACKENDS: LOCAL_AND_TB})
    IncrementalExperiment(cfg, str(work_dir)).run()
    summary = load(work_dir / 'summary.json')
    events = EventAccumulator(str(work_dir / 'vis_data')).Reload()
    for key in ('mIoU', 'mIoU_old', 'IoU/background'):
        series = [(e.step, e.value) for e in events.Scalars(key)]
        assert [s for s, _ in series] == [0, 1]
        for (_, value), step in zip(series, summary['steps']):
            assert value == pytest.approx(_expected(step)[key], abs=1e-4)
    series = events.Scalars('mIoU_new')  # undefined at step 0
    assert [e.step for e in series] == [1]
    # Each step's Runner writes its training curves beside its own logs.
    for k in (0, 1):
        assert glob.glob(
            str(work_dir / f'step_{k}' / '*' / 'vis_data' / 'events.*')), k


def test_missing_tensorboard_is_one_clear_error(embedded_voc, tmp_path,
                                                monkeypatch):
    # Whether or not it is installed here: its import fails.
    monkeypatch.setitem(sys.modules, 'torch.utils.tensorboard', None)
    cfg = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=1,
        **{BACKENDS: [dict(type='TensorboardVisBackend')]})
    with pytest.raises(ImportError, match=r'pip install \.\[tensorboard\]'):
        IncrementalExperiment(cfg, str(tmp_path / 'run')).run()
    assert not (tmp_path / 'run').exists()  # refused before anything
    text = describe_plan(cfg, str(tmp_path / 'run'))
    assert f'metrics of each step -> {tmp_path / "run" / "vis_data"} ' \
        '(TensorboardVisBackend; x = step)' in text
    assert 'ERROR: ' in text and 'pip install .[tensorboard]' in text
