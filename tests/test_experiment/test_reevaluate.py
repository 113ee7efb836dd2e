"""Re-evaluating finished steps under each protocol, against an
independent computation (mmseg's init_model + numpy confusion)."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.apis import inference_model, init_model
from mmseg.registry import DATASETS

from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.experiment.reevaluate import reevaluate
from test_experiment.utils import load, run_tool, tiny_cfg


def _independent_miou(step_dir: str, checkpoint: str, protocol: str):
    """mIoU of M_k on the step's val split under ``protocol``: labels from
    the dataset's label map, predictions from init_model, numpy IoU."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(step_dir, 'deploy_config.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg['eval_protocol'] = protocol
    dataset = DATASETS.build(ds_cfg)
    model = init_model(cfg, checkpoint, device='cpu')
    n = len(dataset.metainfo['classes'])
    inter, union = np.zeros(n), np.zeros(n)
    for i in range(len(dataset)):
        item = dataset[i]
        label = item['data_samples'].gt_sem_seg.data[0].numpy()
        pred = inference_model(
            model, item['data_samples'].img_path).pred_sem_seg.data[0].numpy()
        keep = label != 255
        for c in range(n):
            p, t = (pred == c) & keep, (label == c) & keep
            inter[c] += (p & t).sum()
            union[c] += (p | t).sum()
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return 100 * np.nanmean(iou), len(dataset)


def test_reevaluate_protocols(embedded_voc, tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=1,
        step0_store=str(tmp_path / 'store'))
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
        expected, _ = _independent_miou(
            osp.join(run, 'step_1'), done['checkpoint'], protocol)
        assert got == pytest.approx(expected, abs=0.01)
        values[protocol] = got
    assert len(set(values.values())
               | {same['steps'][0]['metrics']['mIoU']}) == 3
    with pytest.raises(ValueError, match='not finished'):
        reevaluate(run, 'mask_unseen', [4])
    proc = run_tool('test_incremental.py', run, '--eval-protocol',
                    'mask_unseen', '--step', '0')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'step 0 (mask_unseen): mIoU' in proc.stdout
    assert osp.isfile(osp.join(run, 'eval_mask_unseen', 'report.md'))
