"""The path a real user takes: weights, GPUs, crop size, augmentation.

Every setting a user writes (``load_from``, ``pretrained``,
``total_batch_size``, ``crop_size``, ``data_root``) reaches what it decides,
or fails with one clear error; none is silently ignored.
"""
import json
import logging
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from PIL import Image

from mmseg.models.backbones import ResNet
from mmseg_incremental.datasets import RandomRescale
from mmseg_incremental.experiment import (IncrementalExperiment,
                                          build_step_config,
                                          step0_fingerprint_source)
from mmseg_incremental.planning import (file_sha256, init_message,
                                        per_process_batch)
from test_experiment.utils import load, tiny_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = osp.join(ROOT, 'configs', 'il')


def paper_cfg(name: str = 'voc_19-1_ef-ld.py') -> Config:
    return Config.fromfile(osp.join(PAPER, name))


def backbone_state(path: str) -> dict:
    ckpt = torch.load(path, map_location='cpu')
    return {
        k[len('backbone.'):]: v
        for k, v in ckpt['state_dict'].items() if k.startswith('backbone.')
    }


# 1. load_from -------------------------------------------------------------
def test_load_from_applies_to_step0_only():
    cfg = paper_cfg()
    cfg.load_from = 'init.pth'
    assert build_step_config(cfg, 0, 'w').load_from == 'init.pth'
    assert build_step_config(cfg, 1, 'w', 'prev.pth').load_from is None


def test_load_from_does_not_overwrite_the_teacher_copy(embedded_voc, tiny_m0,
                                                       tmp_path):
    """EF+L'_D with load_from: step 1's frozen encoder is M_0's, not the
    initial checkpoint's (the checkpoint used to be reloaded at step 1)."""
    init = tiny_m0['checkpoint']  # a trained M_0 as the initial weights

    cfg = tiny_cfg(
        'bench_15-1_ef-ld.py',
        embedded_voc,
        max_step=1,
        load_from=init,
        step0_store=str(tmp_path / 'store_b'))
    IncrementalExperiment(cfg, str(tmp_path / 'b')).run()
    m0 = backbone_state(
        load(tmp_path / 'b' / 'step_0' / 'step_done.json')['checkpoint'])
    m1 = backbone_state(
        load(tmp_path / 'b' / 'step_1' / 'step_done.json')['checkpoint'])
    start = backbone_state(init)
    conv = 'stem.0.weight'
    assert not torch.equal(m0[conv], start[conv])  # step 0 trained from it
    for key, value in m0.items():  # EF kept M_0's encoder, bit for bit
        assert torch.equal(value, m1[key]), key
    step1 = Config.fromfile(str(tmp_path / 'b' / 'step_1' / 'step_config.py'))
    assert step1.load_from is None
    assert any(h.type == 'FreezeEncoderHook' for h in step1.custom_hooks)


def test_init_file_content_enters_the_fingerprints(embedded_voc, tmp_path):
    torch.save({'state_dict': {'x': torch.zeros(2)}}, tmp_path / 'a.pth')
    shutil.copyfile(tmp_path / 'a.pth', tmp_path / 'b.pth')
    torch.save({'state_dict': {'x': torch.ones(2)}}, tmp_path / 'c.pth')
    sources = {}
    for name in ('a', 'b', 'c'):
        cfg = tiny_cfg(
            'bench_15-1_ft.py',
            embedded_voc,
            load_from=str(tmp_path / f'{name}.pth'))
        sources[name] = step0_fingerprint_source(cfg)['init']
    assert sources['a'] == sources['b']  # same bytes, another path
    assert sources['a'] != sources['c']
    assert sources['c']['load_from'] == \
        'sha256:' + file_sha256(str(tmp_path / 'c.pth'))
    cfg = tiny_cfg(
        'bench_15-1_ft.py',
        embedded_voc,
        load_from=str(tmp_path / 'missing.pth'))
    with pytest.raises(FileNotFoundError, match='load_from'):
        step0_fingerprint_source(cfg)


# 2. and 8. pretrained -------------------------------------------------------
def torchvision_resnet18_file(path: str) -> dict:
    """A torchvision-format ResNet-18 checkpoint: a plain state dict with
    torchvision's key names (conv1, bn1, layerX.Y.*, downsample.{0,1}, fc),
    no ``num_batches_tracked``, random values."""
    torch.manual_seed(7)
    net = ResNet(depth=18)
    state = {
        k: torch.randn_like(v) if v.is_floating_point() else v
        for k, v in net.state_dict().items()
        if not k.endswith('num_batches_tracked')
    }
    state = {
        k: v.abs() + 0.5 if k.endswith('running_var') else v
        for k, v in state.items()
    }
    state['fc.weight'] = torch.randn(1000, 512)
    state['fc.bias'] = torch.randn(1000)
    for key in ('conv1.weight', 'bn1.running_mean', 'layer1.0.conv2.weight',
                'layer2.0.downsample.0.weight',
                'layer4.1.bn2.bias'):  # torchvision's names
        assert key in state
    torch.save(state, path)
    return state


def test_pretrained_reaches_step0_and_loads_every_tensor(
        embedded_voc, tmp_path):
    """The README's route: ``pretrained=<torchvision resnet file>``; with
    lr 0, M_0 equals the file's backbone tensors exactly."""
    path = str(tmp_path / 'resnet18_torchvision.pth')
    state = torchvision_resnet18_file(path)
    cfg = tiny_cfg(
        'bench_15-1_ft.py',
        embedded_voc,
        max_step=0,
        pretrained=path,
        lr_step0=0.0,
        lr_min=0.0,
        step0_store=str(tmp_path / 'store'))
    cfg.merge_from_dict({
        'model.backbone':
        dict(
            _delete_=True,
            type='ResNet',
            depth=18,
            norm_eval=True,
            strides=(1, 2, 1, 1),
            dilations=(1, 1, 2, 4),
            out_indices=(3, ),
            contract_dilation=True),
        'model.decode_head.in_channels':
        512
    })
    step0 = build_step_config(cfg, 0, 'w')
    assert step0.model.pretrained == path
    text, level = init_message(step0)
    assert level == logging.INFO
    assert path in text and file_sha256(path) in text
    IncrementalExperiment(cfg, str(tmp_path / 'run')).run()
    got = backbone_state(
        load(tmp_path / 'run' / 'step_0' / 'step_done.json')['checkpoint'])
    expected = {k: v for k, v in state.items() if not k.startswith('fc.')}
    assert set(expected) <= set(got)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_pretrained_conflicts_and_random_init_warning(tmp_path):
    cfg = paper_cfg()
    assert cfg.model.pretrained is None
    text, level = init_message(build_step_config(cfg, 0, 'w'))
    assert level == logging.WARNING and 'random init' in text
    assert 'ResNet-101' in text
    cfg.merge_from_dict({'pretrained': 'a.pth', 'model.pretrained': 'b.pth'})
    with pytest.raises(ValueError, match='set only the top-level'):
        build_step_config(cfg, 0, 'w')
    cfg = paper_cfg()
    cfg.pretrained = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='model.pretrained'):
        init_message(build_step_config(cfg, 0, 'w'))
    # Later steps start from M_{k-1}: no pretrained file is read.
    assert build_step_config(cfg, 1, 'w', 'prev.pth').model.pretrained is None


def test_torchvision_weights_refused_under_the_authors_caffe_input(tmp_path):
    """The paper rows take the authors' Caffe input; torchvision's ImageNet
    weights with it would train and silently lose accuracy: refused, the
    fix named. The same file under configs/il/ours is accepted, and a file
    without a 1000-way fc (a converted Caffe model) passes the paper row."""
    path = str(tmp_path / 'resnet18_torchvision.pth')
    state = torchvision_resnet18_file(path)
    cfg = paper_cfg('voc_15-1_ld.py')
    cfg.pretrained = path
    with pytest.raises(ValueError) as err:
        init_message(build_step_config(cfg, 0, 'w'))
    assert 'configs/il/ours/voc_15-1_ld.py' in str(err.value)
    assert 'torchvision' in str(err.value)
    ours = Config.fromfile(osp.join(PAPER, 'ours', 'voc_15-1_ld.py'))
    ours.pretrained = path
    assert init_message(build_step_config(ours, 0, 'w'))[1] == logging.INFO
    caffe = str(tmp_path / 'resnet_caffe_converted.pth')
    torch.save({
        k: v
        for k, v in state.items() if not k.startswith('fc.')
    }, caffe)
    cfg.pretrained = caffe
    text, level = init_message(build_step_config(cfg, 0, 'w'))
    assert level == logging.INFO and caffe in text


# 3. total batch -------------------------------------------------------------
@pytest.mark.parametrize('world, expected', [(1, 4), (2, 2), (4, 1)])
def test_paper_total_batch_over_world_sizes(world, expected):
    step = build_step_config(paper_cfg(), 0, 'w', world_size=world)
    assert step.train_dataloader.batch_size == expected
    step = build_step_config(paper_cfg(), 1, 'w', 'p.pth', world_size=world)
    assert step.train_dataloader.batch_size == expected


def test_total_batch_refuses_uneven_world_size():
    with pytest.raises(ValueError, match='total_batch_size=4 .* 3 processes'):
        build_step_config(paper_cfg(), 0, 'w', world_size=3)
    assert per_process_batch(None, 4, 3) == 4  # mmseg's per-GPU convention
    assert per_process_batch(6, 4, 3) == 2


def test_fingerprints_carry_the_total_batch(embedded_voc):
    a = step0_fingerprint_source(
        tiny_cfg('bench_15-1_ft.py', embedded_voc, total_batch_size=4))
    b = step0_fingerprint_source(
        tiny_cfg('bench_15-1_ft.py', embedded_voc, total_batch_size=8))
    assert (a['total_batch_size'], b['total_batch_size']) == (4, 8)
    assert a['world_size'] == 1


# 4. crop size and augmentation ---------------------------------------------
def test_crop_size_drives_pipeline_and_preprocessor():
    cfg = paper_cfg()
    cfg.crop_size = (513, 513)
    step = build_step_config(cfg, 1, 'w', 'p.pth')
    crops = [
        t.crop_size for t in step.train_dataloader.dataset.pipeline
        if 'crop_size' in t
    ]
    assert crops == [(513, 513)]
    assert step.model.data_preprocessor.size == (513, 513)
    default = build_step_config(paper_cfg(), 0, 'w')
    assert [t.type for t in default.train_dataloader.dataset.pipeline][2:4] \
        == ['RandomRescale', 'RandomCrop']


def test_data_root_reaches_every_split(tmp_path):
    cfg = paper_cfg()
    cfg.data_root = str(tmp_path)
    step = build_step_config(cfg, 0, 'w')
    for split in ('train', 'val', 'test'):
        assert step[f'{split}_dataloader'].dataset.data_root == str(tmp_path)


def _write_voc_pair(tmp_path, height=375, width=500):
    """A VOC-size image whose label encodes the row index (mod 20)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    label = (np.arange(height)[:, None] // 19 % 20 * np.ones(
        (1, width), dtype=np.int64)).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / 'img.png')
    Image.fromarray(label).save(tmp_path / 'seg.png')
    return label


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_paper_pipeline_scales_the_image_by_its_own_size(tmp_path, seed):
    """Real VOC size (375x500): the scale s ~ U(0.5, 1.5) multiplies the
    image's own size (mmcv's RandomResize((500, 500), ratio) would scale a
    375x500 image by 500/500*s only by accident of its width)."""
    label = _write_voc_pair(tmp_path)
    cfg = paper_cfg()
    pipeline = Compose(cfg.train_pipeline[:3])  # load, load, rescale
    np.random.seed(seed)
    s = np.random.uniform(0.5, 1.5)
    np.random.seed(seed)
    out = pipeline(
        dict(
            img_path=str(tmp_path / 'img.png'),
            seg_map_path=str(tmp_path / 'seg.png'),
            reduce_zero_label=False,
            seg_fields=[]))
    h, w = out['img'].shape[:2]
    assert (h, w) == (int(375 * s + 0.5), int(500 * s + 0.5))
    assert out['gt_seg_map'].shape == (h, w)
    # Nearest for labels: the row stripes are kept, no new values appear.
    rows = np.floor(np.arange(h) * 375 / h).astype(int)  # cv2's nearest
    expected = label[np.clip(rows, 0, 374), 0]
    assert np.mean(out['gt_seg_map'][:, 0] == expected) > 0.99
    assert set(np.unique(out['gt_seg_map'])) <= set(np.unique(label))


def test_random_rescale_keeps_size_at_ratio_one_and_validates():
    results = dict(
        img=np.zeros((300, 400, 3), np.uint8),
        gt_seg_map=np.zeros((300, 400), np.uint8),
        seg_fields=['gt_seg_map'])
    out = RandomRescale(ratio_range=(1.0, 1.0))(results)
    assert out['img'].shape[:2] == (300, 400)
    with pytest.raises(ValueError, match='ratio_range'):
        RandomRescale(ratio_range=(0.0, 1.0))


def test_experiment_json_records_world_size(embedded_voc, step0_store,
                                            tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ft.py', embedded_voc, max_step=0, step0_store=step0_store)
    IncrementalExperiment(cfg, str(tmp_path / 'r')).run()
    with open(tmp_path / 'r' / 'experiment.json') as f:
        meta = json.load(f)
    assert meta['world_size'] == 1
    meta['world_size'] = 4
    with open(tmp_path / 'r' / 'experiment.json', 'w') as f:
        json.dump(meta, f)
    with pytest.raises(RuntimeError, match='resume it with 4'):
        IncrementalExperiment(cfg, str(tmp_path / 'r'), resume=True).run()
