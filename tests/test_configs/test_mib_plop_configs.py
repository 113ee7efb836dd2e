"""The MiB and PLOP configs: the values taken from the authors' code.

Every config loads through ``load_config``; the planned steps are checked
against MiB's epochs converted with MiB's image lists (the numbers of the
setups' comments), and the R101 network is built once to measure its
output stride.
"""
import functools
import math
import os.path as osp

import pytest
import torch
from mmseg.registry import MODELS

import mmseg_incremental  # noqa: F401
from mmseg_incremental.experiment import build_step_config, list_steps
from mmseg_incremental.models.utils.pseudo_label import (MEDIAN_RULES,
                                                         PLOP_NUM_BINS,
                                                         PLOP_THRESHOLD)
from mmseg_incremental.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METHODS = ('mib', 'plop')
VOC = [
    f'il/{m}/voc_{t}_{s}.py' for m in METHODS for t in ('19-1', '15-5', '15-1')
    for s in ('disjoint', 'overlapped')
]
ADE = [f'il/{m}/ade_{t}.py' for m in METHODS for t in ('100-50', '100-10')]
BENCH = [
    f'embedded/bench_{t}_{m}-overlapped.py' for m in METHODS
    for t in ('15-1', '15-5')
]
ALL = VOC + ADE + BENCH

# MiB's image lists (fcdl94/MiB data/<dataset>/<list>/train-<k>.npy,
# lengths) and epochs (README: 30 on VOC, 60 on ADE20K).
MIB_IMAGES = {
    ('19-1', 'disjoint'): [10034, 548],
    ('19-1', 'overlapped'): [10410, 548],
    ('15-5', 'disjoint'): [8437, 2145],
    ('15-5', 'overlapped'): [9568, 2145],
    ('15-1', 'disjoint'): [8437, 378, 299, 420, 500, 548],
    ('15-1', 'overlapped'): [9568, 487, 299, 491, 500, 548],
    ('100-50', None): [13452, 6744],
    ('100-10', None): [13452, 1130, 1200, 1366, 1550, 1498],
}


@functools.lru_cache(maxsize=None)
def _load(rel):
    """The loaded config, once per file (the tests only read it)."""
    return load_config(osp.join(ROOT, 'configs', rel))


def _method(rel):
    return 'mib' if '/mib/' in rel or '_mib-' in rel else 'plop'


def _mib_iterations(num_images, epochs):
    """MiB/PLOP: 2 GPUs x 12 images, DistributedSampler, drop_last."""
    return math.ceil(num_images / 2) // 12 * epochs


@pytest.mark.parametrize('rel', ALL)
def test_method_setting_and_protocol(rel):
    cfg = _load(rel)
    name = osp.basename(rel)[:-3]
    if _method(rel) == 'mib':
        assert cfg.method == 'MiB'
        assert cfg.eval_protocol == 'mask_unseen'  # MiB's test set
    else:
        assert cfg.method == 'PLOP'
        assert cfg.eval_protocol == 'unseen_as_background'  # PLOP's
    if rel in ADE:
        # MiB's ADE lists are the disjoint rule's; PLOP's scripts --overlap.
        assert cfg.setting == ('disjoint'
                               if _method(rel) == 'mib' else 'overlapped')
    else:
        assert cfg.setting in name
    assert cfg.task in name


@pytest.mark.parametrize('rel', [r for r in ALL if _method(r) == 'mib'])
def test_mib_losses(rel):
    inc = _load(rel).incremental
    terms = inc.distill_terms
    assert list(terms) == ['unbiased_ce', 'unbiased_kd']
    assert terms.unbiased_ce.type == 'UnbiasedCETerm'
    ce = MODELS.build(dict(terms.unbiased_ce))  # valid arguments
    assert ce.loss_decode == dict(type='UnbiasedCrossEntropyLoss')
    kd = MODELS.build(dict(terms.unbiased_kd))
    assert type(kd.distill).__name__ == 'UnbiasedDistillLoss'
    assert kd.distill.loss_weight == 10.0  # MiB's loss_kd
    assert kd.distill.alpha == 1.0
    assert inc.new_class_init == 'background'  # init_balanced
    assert inc.freeze_encoder is False


@pytest.mark.parametrize('rel', [r for r in ALL if _method(r) == 'plop'])
def test_plop_losses(rel):
    inc = _load(rel).incremental
    assert list(inc.distill_terms) == ['pod', 'pseudo_label']
    pod = MODELS.build(dict(inc.distill_terms.pod)).distill
    assert type(pod).__name__ == 'PODLoss'
    assert tuple(pod.scales) == (1, 2, 4)  # spp_scales
    if rel in ADE:  # scripts/ade/plop_ade_*.sh
        assert (pod.loss_weight, pod.last_layer_weight) == (0.001, 0.00001)
    else:  # argparser.py, --method PLOP
        assert (pod.loss_weight, pod.last_layer_weight) == (0.01, 0.0005)
    assert pod.normalize is False
    pseudo = MODELS.build(dict(inc.distill_terms.pseudo_label)).settings
    assert pseudo['type'] == 'entropy'
    assert pseudo['threshold'] == PLOP_THRESHOLD == 0.001
    assert pseudo['num_bins'] == PLOP_NUM_BINS == 100
    assert pseudo['median_rule'] in MEDIAN_RULES
    assert pseudo['adaptive_factor'] is True
    assert inc.new_class_init == 'background'  # init_balanced
    assert inc.freeze_encoder is False


@pytest.mark.parametrize('rel', VOC + ADE)
def test_setup_hyper_parameters(rel):
    cfg = _load(rel)
    assert (cfg.lr_step0, cfg.lr_incremental, cfg.lr_min) == (0.01, 0.001, 0.0)
    assert tuple(cfg.crop_size) == (512, 512)
    assert cfg.total_batch_size == 24
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.momentum, opt.weight_decay,
            opt.nesterov) == ('SGD', 0.9, 1e-4, True)
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.param_scheduler[0].power == 0.9
    backbone, head = cfg.model.backbone, cfg.model.decode_head
    assert (backbone.type, backbone.depth) == ('ResNet', 101)
    assert tuple(backbone.strides) == (1, 2, 2, 1)
    assert tuple(backbone.dilations) == (1, 1, 1, 2)
    # stem (conv stride 2 + max pool) x the stages' strides
    assert 4 * math.prod(backbone.strides) == 16
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert backbone.norm_cfg == dict(type='BN', requires_grad=True)
    assert backbone.norm_eval is False  # BN trained, as iabn_sync
    assert head.type == 'ASPPHead'
    assert (head.in_index, head.channels) == (3, 256)
    assert tuple(head.dilations) == (1, 6, 12, 18)
    assert head.dropout_ratio == 0.0
    assert head.loss_decode.avg_non_ignore is False  # loss.mean()
    pre = cfg.model.data_preprocessor
    assert pre.mean == [123.675, 116.28, 103.53]
    assert pre.std == [58.395, 57.12, 57.375]


@pytest.mark.parametrize('rel', VOC + ADE)
def test_steps_match_mib_epochs(rel):
    cfg = _load(rel)
    ade = rel in ADE
    images = MIB_IMAGES[(cfg.task, None if ade else cfg.setting)]
    mib = [_mib_iterations(n, 60 if ade else 30) for n in images]
    ours = []
    for step in list_steps(cfg):
        step_cfg = build_step_config(cfg, step, 'w',
                                     None if step == 0 else 'prev.pth')
        ours.append(step_cfg.train_cfg.max_iters)
        lr = cfg.lr_step0 if step == 0 else cfg.lr_incremental
        assert step_cfg.optim_wrapper.optimizer.lr == lr
        assert step_cfg.param_scheduler[0].eta_min == 0.0
        assert step_cfg.param_scheduler[0].end == ours[-1]
        assert step_cfg.val_dataloader.dataset.eval_protocol == \
            cfg.eval_protocol
        if step:
            assert step_cfg.model.type == 'IncrementalEncoderDecoder'
            assert step_cfg.model.new_class_init == 'background'
    # Every step exactly its epochs of MiB's list (iters_per_step).
    assert ours == mib


def test_voc_15_1_numbers_of_the_comments():
    assert [
        _mib_iterations(n, 30) for n in MIB_IMAGES[('15-1', 'overlapped')]
    ] == [11940, 600, 360, 600, 600, 660]
    cfg = _load('il/mib/voc_15-1_overlapped.py')
    assert cfg.iters_per_step == [11940, 600, 360, 600, 600, 660]


def test_15_5_and_15_1_share_step_0():
    for method in METHODS:
        for setting in ('disjoint', 'overlapped'):
            a = _load(f'il/{method}/voc_15-5_{setting}.py')
            b = _load(f'il/{method}/voc_15-1_{setting}.py')
            assert a.iters_per_step[0] == b.iters_per_step[0]


@pytest.mark.parametrize('rel', BENCH)
def test_bench_configs_keep_the_tiny_setup(rel):
    cfg = _load(rel)
    ref = _load('embedded/bench_15-1_ft.py')
    assert cfg.model == ref.model
    for key in ('iters_per_class', 'lr_step0', 'lr_incremental', 'lr_min',
                'total_batch_size'):
        assert cfg[key] == ref[key]
    assert cfg.get('iters_per_class_incremental') is None
    assert cfg.setting == 'overlapped'


def test_r101_output_stride_16():
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = _load('il/plop/voc_15-1_overlapped.py')
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 64, 64))
        logits = model.decode_head(feats)
    assert [tuple(f.shape) for f in feats] == [(1, 256, 16, 16),
                                               (1, 512, 8, 8), (1, 1024, 4, 4),
                                               (1, 2048, 4, 4)]
    assert tuple(logits.shape) == (1, 21, 4, 4)  # 64 / 16
    assert model.decode_head.conv_seg.in_channels == 256
    dilated = model.backbone.layer4[0].conv2
    assert (dilated.dilation, dilated.stride) == ((2, 2), (1, 1))
    assert model.backbone.layer3[0].conv2.stride == (2, 2)
