"""RunSummary: summary.json parsed once, validated, with one clear error
naming the file; write_summary records the method's config."""
import json
import os.path as osp

import pytest
from mmengine.config import Config
from test_reporting.utils import ROOT, incremental, voc_19_1, voc_joint

from mmseg_incremental import get_task
from mmseg_incremental.experiment.summary import (metrics_to_summary,
                                                  write_summary)
from mmseg_incremental.reporting import RunSummary, SummaryError
from mmseg_incremental.reporting.run_summary import model_label


def test_from_dict_and_views():
    s = voc_19_1()
    run = RunSummary.from_dict(s)
    assert (run.task, run.dataset, run.method, run.setting,
            run.eval_protocol) == ('19-1', 'voc', "L'_D", 'sequential',
                                   'seen_only')
    assert run.incremental == incremental("L'_D")
    assert run.incremental['distill_terms']['output']['variant'] == 'ilt'
    assert [s.step for s in run.steps] == [0, 1]
    assert run.last.metrics.mIoU_new == 30.0
    assert run.steps[0].metrics.mIoU_new is None
    assert run.last.metrics.IoU['person'] == 65.0
    assert run.is_final and not run.is_joint
    assert run.step_labels == ['M0(0-19)', 'M1(20)']
    assert run.to_dict() == s  # nothing lost
    classes = run.class_ious(run.last)
    assert classes[20] == ('tvmonitor', 20, 1, 30.0)
    assert classes[3] == ('bird', 3, 0, 53.0)
    # A partial run: step 1 of 19-1 not reached.
    partial = RunSummary.from_dict(dict(s, steps=s['steps'][:1]))
    assert not partial.is_final


def test_defaults_of_a_minimal_summary():
    # docs/design.md §5's keys only (an older summary.json).
    s = voc_19_1()
    minimal = {k: s[k] for k in ('task', 'setting', 'steps')}
    for e in minimal['steps']:
        e['metrics']['mIoU_old'] = float('nan')
    run = RunSummary.from_dict(minimal)
    assert run.dataset == 'unknown' and run.method == 'unknown'
    assert run.eval_protocol == 'seen_only' and run.incremental is None
    assert run.task_steps == (tuple(range(20)), (20, ))  # from new_classes
    assert run.last.metrics.mIoU_old is None  # NaN read as undefined


def test_resplit_joint():
    run = RunSummary.from_dict(voc_joint())
    assert run.is_joint and run.is_final
    # Scored as 19-1: old = mean(0..19 without bottle) = 185 / 19,
    # new = 41, all = (185 + 41) / 20.
    old, new, all_ = run.resplit(run.last, range(20))
    assert old == pytest.approx(185 / 19) and new == 41.0
    assert all_ == pytest.approx(226 / 20)


def test_model_label():
    assert model_label(0, range(16)) == 'M0(0-15)'
    assert model_label(3, [18]) == 'M3(18)'
    assert model_label(1, [3, 7]) == 'M1(3,7)'
    assert model_label(2, []) == 'M2(?)'


@pytest.mark.parametrize('change,message', [
    (lambda s: s.update(steps=[]), 'non-empty "steps" list'),
    (lambda s: s['steps'][1].pop('step'), r'steps\[1\] needs "step"'),
    (lambda s: s['steps'][0]['metrics'].update(mIoU='high'),
     r'steps\[0\]\.metrics\.mIoU must be a number or null'),
    (lambda s: s['steps'][1]['metrics']['IoU'].update(cat=[1]),
     r'steps\[1\]\.metrics\.IoU\.cat must be a number'),
    (lambda s: s['steps'][1].update(seen_classes='all'),
     r'steps\[1\]\.seen_classes must be a list of class ids'),
    (lambda s: s.update(method=3), '"method" must be a string'),
    (lambda s: s.update(incremental=[1]), '"incremental" must be a dict'),
    (lambda s: s.pop('task'), 'has no "task"'),
    (lambda s: s['steps'][1].update(step=2),
     r"steps\[1\]\.step is 2, outside the task's 2 steps"),
])
def test_malformed_summary_names_file_and_field(tmp_path, change, message):
    s = voc_19_1()
    change(s)
    (tmp_path / 'summary.json').write_text(json.dumps(s))
    path = str(tmp_path / 'summary.json')
    with pytest.raises(SummaryError, match=message) as info:
        RunSummary.load(str(tmp_path))
    assert str(info.value).startswith(path)
    with pytest.raises(ValueError, match=message):
        RunSummary.from_dict(s)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='summary.json does not'):
        RunSummary.load(str(tmp_path))
    (tmp_path / 'summary.json').write_text('{"task": ')
    with pytest.raises(SummaryError,
                       match=r'summary.json is damaged \(not valid JSON'):
        RunSummary.load(str(tmp_path))


def test_write_summary_records_incremental(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'il', 'voc_19-1_ld.py'))
    task = get_task('voc', '19-1')
    metrics = {'mIoU': 60.0, 'mIoU_new': float('nan'), 'IoU.background': 90}
    steps = [metrics_to_summary(task, 0, metrics)]
    s = write_summary(str(tmp_path), cfg, task, steps)
    on_disk = json.loads((tmp_path / 'summary.json').read_text())
    assert on_disk == s
    assert s['incremental'] == incremental("L'_D")
    assert s['incremental']['distill_terms']['output'] == dict(
        type='OutputDistillTerm',
        variant='ilt',
        pixel_mask='old',
        loss_weight=1.0)
    assert s['method'] == "L'_D"
    run = RunSummary.load(str(tmp_path))
    assert run.incremental == s['incremental']
    assert run.last.metrics.mIoU_new is None
    assert run.last.metrics.IoU == {'background': 90.0}
    assert not (tmp_path / 'report.md').exists()  # reporting is separate
    s = write_summary(str(tmp_path), Config(dict(task='19-1')), task, steps)
    assert s['incremental'] == {} and s['method'] == 'custom'
