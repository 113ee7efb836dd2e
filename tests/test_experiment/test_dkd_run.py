"""DKD on the embedded benchmark (tiny, two steps): the leaf plans, step 0
and step 1 train end to end, a killed step 1 resumes to the same metrics,
the metrics equal DKD's prediction rule applied apart from the run, and the
step deploys."""
import glob
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmseg.registry import MODELS
from mmseg_incremental.experiment import IncrementalExperiment
from test_experiment.utils import Killed as _Killed
from test_experiment.utils import (CFG_DIR, accumulate_iou, call_tool,
                                   deployed_step, load, miou_percent,
                                   state_dict, tiny_cfg)

LEAF = 'bench_15-1_dkd-overlapped.py'
#: |mIoU - independent mIoU| allowed (the same predictions; the two sum
#: the same integer counts in another order).
MIOU_TOL = 0.01
DKD_LOSSES = {
    'decode.loss_mbce', 'decode.loss_ac', 'distill.loss_kd',
    'distill.loss_dkd_pos', 'distill.loss_dkd_neg', 'distill.loss_wd_new'
}


def test_dkd_leaf_plans_with_the_tiny_overrides(embedded_voc, tmp_path):
    proc = call_tool('train_incremental.py', osp.join(CFG_DIR, LEAF),
                     '--dry-run', '--work-dir', tmp_path / 'w',
                     '--cfg-options', 'iters_per_class=1', 'max_step=1',
                     'total_batch_size=4', f'data_root={embedded_voc}',
                     'model.data_preprocessor.size=(32,32)')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'voc 15-1: 6 steps, method DKD' in proc.stdout
    assert 'step 1: new pottedplant (1); seen 17 classes' in proc.stdout
    assert not (tmp_path / 'w').exists()


def _records(step_dir):
    """The training records of a step's scalars.json files."""
    found = []
    for path in glob.glob(osp.join(step_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            found += [json.loads(line) for line in f if line.strip()]
    return [r for r in found if 'loss' in r]


def _dkd_miou(step_dir, checkpoint, protocol):
    """mIoU (%) of a step on its val split with DKD's rule applied here:
    the deployed network's raw head output, bilinearly upsampled, sigmoid,
    argmax over the classes, background where no class passes 0.5
    (cvlab-yonsei/DKD trainer/trainer_voc.py:181-185); IoU by numpy over
    the classes present in labels or predictions."""
    dataset, model = deployed_step(step_dir, checkpoint, protocol)
    n = len(dataset.metainfo['classes'])
    inter, union = np.zeros(n), np.zeros(n)
    for i in range(len(dataset)):
        item = dataset[i]
        label = item['data_samples'].gt_sem_seg.data[0].numpy()
        data = model.data_preprocessor(
            dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
            False)
        assert tuple(data['inputs'].shape[-2:]) == label.shape
        with torch.no_grad():
            raw = model.decode_head.forward(model.extract_feat(data['inputs']))
        up = F.interpolate(
            raw, size=label.shape, mode='bilinear',
            align_corners=False)[0].numpy()
        prob = 1.0 / (1.0 + np.exp(-up))
        pred = prob[1:].argmax(axis=0) + 1
        pred[(prob[1:] > 0.5).sum(axis=0) == 0] = 0
        accumulate_iou(inter, union, pred, label)
    return miou_percent(inter, union)


def test_dkd_trains_two_steps_resumes_and_deploys(embedded_voc, step0_store,
                                                  tmp_path):
    overrides = dict(
        max_step=1, iters_per_class_incremental=4, step0_store=step0_store)
    full = IncrementalExperiment(
        tiny_cfg(LEAF, embedded_voc, **overrides),
        str(tmp_path / 'full')).run()
    assert full['method'] == 'DKD'
    assert full['eval_protocol'] == 'unseen_as_background'
    step1 = tmp_path / 'full' / 'step_1'

    # The plan: DKD's head at both steps, the term and its hook at step 1.
    step0_cfg = Config.fromfile(
        str(tmp_path / 'full' / 'step_0' / 'step_config.py'))
    assert step0_cfg.model.decode_head.type == 'DKDHead'
    step_cfg = Config.fromfile(str(step1 / 'step_config.py'))
    assert step_cfg.model.type == 'IncrementalEncoderDecoder'
    assert step_cfg.model.decode_head.type == 'DKDHead'
    assert step_cfg.model.distill_terms.dkd.type == 'DKDTerm'
    assert 'DKDHook' in [h.type for h in step_cfg.custom_hooks]
    assert step_cfg.optim_wrapper.paramwise_cfg.custom_keys.decode_head \
        .lr_mult == 10.0

    # Every DKD loss of step 1 is logged, finite and part of the total.
    records = _records(str(step1))
    assert len(records) == 4
    for record in records:
        assert DKD_LOSSES <= set(record)
        assert all(math.isfinite(record[k]) for k in DKD_LOSSES)
        parts = sum(v for k, v in record.items()
                    if k.split('.')[-1].startswith('loss_'))
        assert record['loss'] == pytest.approx(parts, rel=1e-4)
    step0_keys = set().union(*_records(str(tmp_path / 'full' / 'step_0')))
    assert {'decode.loss_mbce', 'decode.loss_ac'} <= step0_keys
    assert not any(k.startswith('distill.') for k in step0_keys)

    # BN frozen at step 1: M_1's BatchNorm statistics and affine parameters
    # are M_0's, bit for bit; the classifier learnt; no weight decay left
    # in the optimizer's groups.
    m0, m1 = (
        state_dict(
            load(tmp_path / 'full' / f'step_{k}' /
                 'step_done.json')['checkpoint']) for k in (0, 1))
    norms = [
        k for k in m0
        if k.rsplit('.', 1)[-1] in ('running_mean', 'running_var')
    ]
    affine = {k.rsplit('.', 1)[0] for k in norms}
    assert len(norms) > 20
    for key in norms + [
            f'{m}.{p}' for m in affine for p in ('weight', 'bias')
    ]:
        assert torch.equal(m0[key], m1[key]), key
    assert not torch.equal(m0['decode_head.conv_seg.weight'],
                           m1['decode_head.conv_seg.weight'][:16])
    checkpoint = torch.load(
        load(step1 / 'step_done.json')['checkpoint'],
        map_location='cpu',
        weights_only=False)
    assert {
        g['weight_decay']
        for g in checkpoint['optimizer']['param_groups']
    } == {0.0}

    # Step 1's metrics are DKD's rule on its checkpoint, computed apart
    # (step 0 evaluates through the same head).
    expected = _dkd_miou(
        str(step1),
        load(step1 / 'step_done.json')['checkpoint'], full['eval_protocol'])
    assert full['steps'][1]['metrics']['mIoU'] == pytest.approx(
        expected, abs=MIOU_TOL)

    # Killed after step 1's second iteration (a checkpoint every 2), then
    # resumed: the metrics of the uninterrupted run.
    cfg = tiny_cfg(LEAF, embedded_voc, **overrides)
    cfg.custom_hooks = [
        dict(type='KillAtIterHook', step_dir='step_1', at_iter=2)
    ]
    with pytest.raises(_Killed):
        IncrementalExperiment(cfg, str(tmp_path / 'killed')).run()
    resumed = IncrementalExperiment(
        cfg, str(tmp_path / 'killed'), resume=True).run()
    for a, b in zip(full['steps'], resumed['steps']):
        assert a['metrics'] == b['metrics']

    # Deployed: a stock EncoderDecoder with DKD's head, which loads M_1 as
    # it is; the same keys load into mmseg's plain ASPPHead.
    deploy = Config.fromfile(str(step1 / 'deploy_config.py'))
    assert deploy.model.type == 'EncoderDecoder'
    assert deploy.model.decode_head.type == 'DKDHead'
    assert 'distill_terms' not in deploy.model
    assert 'DKDHook' not in [h.type for h in deploy.get('custom_hooks', [])]
    MODELS.build(deploy.model).load_state_dict(m1, strict=True)
    stock = dict(deploy.model.decode_head, type='ASPPHead')
    for key in ('head_type', 'loss_decode'):
        stock.pop(key)
    MODELS.build(dict(deploy.model, decode_head=stock)).load_state_dict(
        m1, strict=True)
