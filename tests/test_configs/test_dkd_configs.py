"""The DKD configs: the values taken from the authors' code.

cvlab-yonsei/DKD (commit fb4693f): ``scripts/voc/overlapped/*.sh``,
``scripts/ade/overlapped/*.sh``, ``configs/config_{voc,ade}.json``,
``train_{voc,ade}.py``, ``data_loader/``. Every leaf of ``configs/il/dkd/``
is loaded and planned for all its steps (config building only, no model):
DKD's head at every step, its term at steps k >= 1, the lr, batch, lr
multiplier and evaluation of its scripts, and each step exactly its epochs
of DKD's image lists.
"""
import functools
import math
import os.path as osp
import re

import pytest

import mmseg_incremental  # noqa: F401
from mmseg_incremental.planning import (build_step_config, list_steps,
                                        per_process_batch, total_batch)
from mmseg_incremental.tasks import get_task
from mmseg_incremental.utils import load_config
from test_configs.test_mib_plop_configs import MIB_IMAGES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VOC_TASKS = ('19-1', '15-5', '15-1', '10-1', '5-3')
VOC = [
    f'il/dkd/voc_{t}_{s}.py' for t in VOC_TASKS
    for s in ('overlapped', 'disjoint')
]
ADE = [f'il/dkd/ade_{t}.py' for t in ('100-50', '100-10', '50-50')]
ALL = VOC + ADE

#: Training images per step of DKD's lists, data/<dataset>/<setting>_<task>_
#: train_<k>.npy (the arrays' lengths). VOC 10-1 and 5-3 disjoint, of which
#: DKD ships no list: its disjoint rule on its overlapped lists (step k's
#: images in no later step's list), which gives DKD's own disjoint 15-1,
#: 15-5 and 19-1 lists image for image.
DKD_IMAGES = {
    ('19-1', 'overlapped'): [10410, 548],
    ('19-1', 'disjoint'): [10034, 548],
    ('15-5', 'overlapped'): [9568, 2145],
    ('15-5', 'disjoint'): [8437, 2145],
    ('15-1', 'overlapped'): [9568, 487, 299, 491, 500, 548],
    ('15-1', 'disjoint'): [8437, 378, 299, 420, 500, 548],
    ('10-1', 'overlapped'):
    [6139, 528, 1177, 444, 482, 3898, 487, 299, 491, 500, 548],
    ('10-1', 'disjoint'):
    [3706, 188, 868, 227, 201, 3247, 378, 299, 420, 500, 548],
    ('5-3', 'overlapped'): [2836, 2331, 1542, 2095, 4484, 1468],
    ('5-3', 'disjoint'): [1753, 1517, 624, 1296, 3924, 1468],
    ('100-50', 'overlapped'): [20210, 9390],
    ('100-10', 'overlapped'): [20192, 1710, 2294, 2747, 4279, 2844],
    ('50-50', 'overlapped'): [20177, 13186, 9390],
}
VOC_TRAIN_AUG = 10582


@functools.lru_cache(maxsize=None)
def _load(rel):
    """The loaded config, once per file (the tests only read it)."""
    return load_config(osp.join(ROOT, 'configs', rel))


@functools.lru_cache(maxsize=None)
def _steps(rel):
    """Every step's config (teacher 't.pth' at steps k >= 1)."""
    cfg = _load(rel)
    return [
        build_step_config(cfg, step, '', teacher_checkpoint='t.pth')
        for step in list_steps(cfg)
    ]


def _dkd_iterations(num_images, ade):
    """DKD: 4 GPUs x --bs 8 (VOC) / 6 (ADE), DistributedSampler,
    drop_last; 60 epochs (VOC) / 100 (ADE)."""
    per_gpu, epochs = (6, 100) if ade else (8, 60)
    return math.ceil(num_images / 4) // per_gpu * epochs


def test_every_task_is_shipped():
    for task in VOC_TASKS:
        assert get_task('voc', task)  # 10-1 and 5-3 are tasks here too
    for rel in ALL:
        assert osp.isfile(osp.join(ROOT, 'configs', rel)), rel


@pytest.mark.parametrize('rel', ALL)
def test_method_task_setting_and_evaluation(rel):
    cfg = _load(rel)
    name = osp.basename(rel)[:-3]
    assert cfg.method == 'DKD'
    assert cfg.task in name
    if rel in ADE:
        assert cfg.setting == 'overlapped'  # DKD's ADE lists: overlap_*
        # config_ade.json: the test set's unseen classes -> 255.
        assert cfg.eval_protocol == 'mask_unseen'
    else:
        assert cfg.setting in name
        # config_voc.json: the test set's unseen classes -> 0, disjoint too.
        assert cfg.eval_protocol == 'unseen_as_background'
    # data_loader/dataset.py transform_val (the test set's): Resize(512),
    # CenterCrop(512).
    assert cfg.eval_crop == 512
    assert tuple(cfg.crop_size) == (512, 512)


@pytest.mark.parametrize('rel', ALL)
def test_optimizer_batch_and_lr(rel):
    cfg = _load(rel)
    ade = rel in ADE
    # scripts: INIT_LR / LR; config_*.json: SGD, PolyLR to 0.
    if ade:
        assert (cfg.lr_step0, cfg.lr_incremental) == (0.0025, 0.00025)
    else:
        assert (cfg.lr_step0, cfg.lr_incremental) == (0.001, 0.0001)
    assert cfg.lr_min == 0.0
    # scripts: 4 GPUs x BS=8 (VOC, "Total 32") / BS=6 (ADE, "Total 24").
    assert cfg.total_batch_size == (24 if ade else 32)
    assert total_batch(cfg, 4) == (24 if ade else 32)
    assert per_process_batch(cfg.total_batch_size,
                             cfg.train_dataloader.batch_size,
                             4) == (6 if ade else 8)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.momentum, opt.weight_decay,
            opt.nesterov) == ('SGD', 0.9, 1e-4, True)
    # train_*.py: ASPP and classifiers at 10 x the backbone's lr.
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
        'decode_head': dict(lr_mult=10.0)
    }
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.param_scheduler[0].power == 0.9
    # train_*.py: _set_bn_momentum(model.backbone, momentum=0.01).
    assert cfg.model.backbone.norm_cfg.momentum == 0.01
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.depth) == ('ResNet', 101)
    assert 4 * math.prod(backbone.strides) == 16  # output_stride 16


@pytest.mark.parametrize('rel', ALL)
def test_every_step_plans_dkd(rel):
    cfg = _load(rel)
    ade = rel in ADE
    pos_weight = 35.0 if ade else 2.0  # config_ade.json / INIT_POSWEIGHT
    for step, step_cfg in enumerate(_steps(rel)):
        head = step_cfg.model.decode_head
        assert (head.type, head.head_type) == ('DKDHead', 'ASPPHead')
        assert head.dropout_ratio == 0.1  # models/modules/aspp.py
        assert step_cfg.optim_wrapper.paramwise_cfg.custom_keys == {
            'decode_head': dict(lr_mult=10.0)
        }
        lr = cfg.lr_step0 if step == 0 else cfg.lr_incremental
        assert step_cfg.optim_wrapper.optimizer.lr == lr
        sched = step_cfg.param_scheduler
        assert [s.type for s in sched] == ['PolyLR']
        assert sched[0].eta_min == 0.0
        assert sched[0].end == step_cfg.train_cfg.max_iters
        assert step_cfg.val_dataloader.dataset.eval_protocol == \
            cfg.eval_protocol
        if step == 0:
            assert step_cfg.model.type == 'EncoderDecoder'
            assert head.loss_decode == [
                dict(
                    type='MultiLabelBCELoss',
                    pos_weight=pos_weight,
                    loss_weight=1.0),
                dict(type='AuxClassifierLoss', loss_weight=1.0)
            ]
            continue
        model = step_cfg.model
        assert model.type == 'IncrementalEncoderDecoder'
        assert model.teacher_checkpoint == 't.pth'
        assert model.new_class_init == 'default'
        assert list(model.distill_terms) == ['dkd']
        term = model.distill_terms.dkd
        assert term.type == 'DKDTerm'
        # config_*.json hyperparameter: mbce 1, kd 5, dkd_pos 5, dkd_neg
        # 5, ac 1; pos_weight 1 (VOC, no --pos_weight at k >= 1) / 35.
        assert (term.kd, term.dkd_pos, term.dkd_neg) == (5.0, 5.0, 5.0)
        assert term.loss_decode == [
            dict(
                type='MultiLabelBCELoss',
                pos_weight=35.0 if ade else 1.0,
                loss_weight=1.0),
            dict(type='AuxClassifierLoss', loss_weight=1.0)
        ]
        assert term.freeze_bn is True  # --freeze_bn
        assert term.init_from_aux is True  # ac > 0: init_novel_classifier
        assert (term.weight_decay, term.new_class_weight_decay) == (0.0, 1e-4)


@pytest.mark.parametrize('rel', ALL)
def test_steps_match_dkd_epochs(rel):
    cfg = _load(rel)
    ade = rel in ADE
    images = DKD_IMAGES[(cfg.task, cfg.setting)]
    assert len(images) == get_task('ade' if ade else 'voc', cfg.task).num_steps
    dkd = [_dkd_iterations(n, ade) for n in images]
    assert list(cfg.iters_per_step) == dkd
    assert [s.train_cfg.max_iters for s in _steps(rel)] == dkd


def test_image_counts_agree_with_the_other_lists():
    # Where a task and setting are MiB's, DKD's lists have MiB's sizes.
    for (task, setting), images in MIB_IMAGES.items():
        if setting is not None:
            assert DKD_IMAGES[(task, setting)] == images
    # The disjoint rule puts every train_aug image in exactly one step (the
    # step of its highest class).
    for task in VOC_TASKS:
        assert sum(DKD_IMAGES[(task, 'disjoint')]) == VOC_TRAIN_AUG
    # Disjoint 10-1's step k holds the images whose highest class is 10 + k:
    # its steps 6-10 are 15-1's steps 1-5, its steps 0-5 15-1's step 0, and
    # 5-3's steps 3-5 (classes 12-14, 15-17, 18-20) sums of its steps.
    d101 = DKD_IMAGES[('10-1', 'disjoint')]
    d151 = DKD_IMAGES[('15-1', 'disjoint')]
    assert d101[6:] == d151[1:]
    assert sum(d101[:6]) == d151[0]
    assert DKD_IMAGES[('5-3', 'disjoint')][3:] == [
        sum(d101[2:5]), sum(d101[5:8]),
        sum(d101[8:])
    ]
    # The last step sees every class: disjoint = overlapped.
    for task in VOC_TASKS:
        assert DKD_IMAGES[(task, 'disjoint')][-1] == \
            DKD_IMAGES[(task, 'overlapped')][-1]


def test_voc_15_1_numbers_of_the_comments():
    assert _load('il/dkd/voc_15-1_overlapped.py').iters_per_step == [
        17940, 900, 540, 900, 900, 1020
    ]
    assert _load('il/dkd/ade_100-50.py').iters_per_step == [84200, 39100]


def test_15_5_and_15_1_share_step_0():
    for setting in ('disjoint', 'overlapped'):
        a = _load(f'il/dkd/voc_15-5_{setting}.py')
        b = _load(f'il/dkd/voc_15-1_{setting}.py')
        assert a.iters_per_step[0] == b.iters_per_step[0]


@pytest.mark.parametrize('rel', ALL)
def test_docs_table_carries_each_leafs_published_numbers(rel):
    """docs/configs.md's DKD table prints the numbers of each leaf's
    header (DKD README.md), and a dash where DKD published none."""
    with open(osp.join(ROOT, 'configs', rel)) as f:
        header = f.read()
    with open(osp.join(ROOT, 'docs', 'configs.md')) as f:
        docs = f.read()
    name = osp.basename(rel)[:-3]
    if rel in ADE:
        label = f'ADE {name[4:]}'
    else:
        _, task, setting = name.split('_')
        label = f'VOC {task} {setting}'
    rows = [
        line for line in docs[docs.index('### DKD'):].splitlines()
        if line.startswith(f'| {label} |')
    ]
    assert len(rows) == 1, label
    found = re.search(r'hIoU / mIoU_all = ([\d.]+) / ([\d.]+)',
                      ' '.join(header.replace('#', ' ').split()))
    if found is None:
        assert 'published no' in header
        assert rows[0].startswith(f'| {label} | – |')
    else:
        assert rows[0].startswith(
            f'| {label} | {found.group(1)} / {found.group(2)} |')
