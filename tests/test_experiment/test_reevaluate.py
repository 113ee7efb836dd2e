"""Re-evaluating finished steps under each protocol, against an
independent computation (mmseg's init_model + numpy confusion)."""
import os.path as osp
import re

import pytest

from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.experiment.reevaluate import reevaluate
from test_experiment.utils import (call_tool, independent_crop_miou,
                                   independent_miou, load, tiny_cfg)


def test_reevaluate_protocols(embedded_voc, step0_store, tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ld.py', embedded_voc, max_step=1, step0_store=step0_store)
    run = str(tmp_path / 'run')
    original = IncrementalExperiment(cfg, run).run()
    done = load(osp.join(run, 'step_1', 'step_done.json'))
    same = reevaluate(run, 'seen_only', [1])
    assert same['steps'][0]['metrics'] == original['steps'][1]['metrics']
    values = {}
    for protocol in ('mask_unseen', 'unseen_as_background'):
        summary = reevaluate(run, protocol, [1])
        assert summary['eval_protocol'] == protocol
        assert load(osp.join(run, f'eval_{protocol}',
                             'summary.json')) == summary
        got = summary['steps'][0]['metrics']['mIoU']
        expected, _ = independent_miou(
            osp.join(run, 'step_1'), done['checkpoint'], protocol)
        assert got == pytest.approx(expected, abs=0.01)
        values[protocol] = got
    assert len(set(values.values())
               | {same['steps'][0]['metrics']['mIoU']}) == 3
    with pytest.raises(ValueError, match='not finished'):
        reevaluate(run, 'mask_unseen', [4])
    proc = call_tool('test_incremental.py', run, '--eval-protocol',
                     'mask_unseen', '--step', '0')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'step 0 (mask_unseen): mIoU' in proc.stdout
    assert osp.isfile(osp.join(run, 'eval_mask_unseen', 'report.md'))

    # MiB / PLOP's view (eval_crop): by hand it gives the same mIoU; None
    # gives back the whole-image numbers.
    crop = reevaluate(run, 'seen_only', [1], eval_crop=40)
    assert crop['eval_crop'] == 40
    assert load(osp.join(run, 'eval_seen_only_crop40', 'summary.json')) == \
        crop
    expected = independent_crop_miou(
        osp.join(run, 'step_1'), done['checkpoint'], 40)
    assert crop['steps'][0]['metrics']['mIoU'] == pytest.approx(
        expected, abs=0.01)
    assert crop['steps'][0]['metrics'] != same['steps'][0]['metrics']
    whole = reevaluate(run, 'seen_only', [1], eval_crop=None)
    assert whole['eval_crop'] is None
    assert whole['steps'][0]['metrics'] == original['steps'][1]['metrics']
    proc = call_tool('test_incremental.py', run, '--eval-protocol',
                     'seen_only', '--step', '1', '--eval-crop', '40')
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = open(osp.join(run, 'eval_seen_only_crop40', 'report.md')).read()
    assert re.search(r'\| evaluated on +\| 40x40 centre crop \(short side '
                     r'resized to 40\) +\|', report), report[:1500]
