"""The real DeepLab-v2 R101 config: builds, trains a step, distils (CPU)."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

CONFIG = (
    Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'models' /
    'deeplabv2_r101-d8.py')


def _torchvision_resnet101_keys():
    """The key names of torchvision's resnet101 state dict, without fc."""
    keys = ['conv1.weight']
    bn = ('weight', 'bias', 'running_mean', 'running_var',
          'num_batches_tracked')
    keys += [f'bn1.{p}' for p in bn]
    for layer, blocks in enumerate((3, 4, 23, 3), start=1):
        for b in range(blocks):
            pre = f'layer{layer}.{b}'
            for i in (1, 2, 3):
                keys.append(f'{pre}.conv{i}.weight')
                keys += [f'{pre}.bn{i}.{p}' for p in bn]
            if b == 0:
                keys.append(f'{pre}.downsample.0.weight')
                keys += [f'{pre}.downsample.1.{p}' for p in bn]
    return set(keys)


def _batch(num_classes, size=33):
    gen = torch.Generator().manual_seed(0)
    label = torch.randint(0, num_classes, (1, size, size), generator=gen)
    label[:, :5] = 255
    sample = SegDataSample(
        gt_sem_seg=PixelData(data=label),
        metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
    image = torch.randint(
        0, 256, (3, size, size), generator=gen, dtype=torch.uint8)
    return dict(inputs=[image], data_samples=[sample])


@pytest.fixture(scope='module')
def r101_cfg():
    cfg = Config.fromfile(str(CONFIG))
    # A _base_ primitive: no key that another base defines (mmengine refuses
    # duplicates among bases); the crop size comes from the leaf.
    assert set(cfg.keys()) == {
        'pretrained', 'norm_cfg', 'data_preprocessor', 'model'
    }
    assert cfg.pretrained is None and cfg.model.pretrained is None
    cfg.model.data_preprocessor.size = (33, 33)  # keep CPU time low
    return cfg


def test_r101_deeplabv2_builds_and_learns(r101_cfg, tmp_path):
    model_cfg = copy.deepcopy(r101_cfg.model)
    model_cfg.decode_head.num_classes = 3
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    # (Only the head: R101's Kaiming init costs seconds on CPU.)
    model.decode_head.init_weights()
    backbone = model.backbone
    assert type(backbone).__name__ == 'ResNet' and backbone.depth == 101
    assert backbone.strides == (1, 2, 1, 1)
    assert backbone.dilations == (1, 1, 2, 4)
    assert type(model.decode_head).__name__ == 'DeepLabV2Head'
    assert model.decode_head.dilations == (6, 12, 18, 24)
    assert not model.with_auxiliary_head
    # torchvision's resnet101 weights load without renaming.
    assert set(backbone.state_dict()) == _torchvision_resnet101_keys()
    # BN frozen: no trainable BN parameter, statistics in eval mode.
    bns = [
        m for m in backbone.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    assert len(bns) == 104
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    model.train()
    assert all(not m.training for m in bns)

    data = model.data_preprocessor(_batch(3), training=True)
    feats = model.extract_feat(data['inputs'])
    assert feats[3].shape == (1, 2048, 5, 5)  # output stride 8 of 33
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    # Logits start near 0 (N(0, 0.01) classifier): CE close to log 3.
    assert losses['decode.loss_ce'].item() == pytest.approx(1.0986, abs=0.3)
    losses['decode.loss_ce'].backward()
    assert model.decode_head.aspp[3].weight.grad.abs().sum() > 0
    assert backbone.layer4[2].conv3.weight.grad.abs().sum() > 0
    assert backbone.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for m in bns for p in m.parameters())

    # The same network as step 1 of a task: teacher from this checkpoint.
    ckpt = str(tmp_path / 'step_0.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'step': 0}}, ckpt)
    step1 = copy.deepcopy(r101_cfg.model)
    step1.update(
        type='DistillEncoderDecoder',
        teacher_checkpoint=ckpt,
        num_old_classes=3,
        freeze_encoder=True,
        distill_output=dict(pixel_mask='old'))
    step1.decode_head.num_classes = 4
    del model, feats, losses
    student = MODELS.build(step1)
    student.train()
    data = student.data_preprocessor(_batch(4), training=True)
    losses = student.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {
        'decode.loss_ce', 'decode.acc_seg', 'distill.loss_distill_out'
    }
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in student.backbone.parameters())
    assert all(p.grad is None for p in student.teacher.parameters())
    assert student.decode_head.aspp[0].weight.grad.abs().sum() > 0
    # EF shares the encoder; the old rows of the grown head give the
    # teacher's logits (up to float summation order: the convolution
    # kernels may differ between 3 and 4 output channels).
    assert student._teacher_shares_encoder()
    student.eval()
    with torch.no_grad():
        feats = student.extract_feat(data['inputs'])
        new = student.decode_head(feats)
        old = student.teacher.decode_head(feats)
    torch.testing.assert_close(new[:, :3], old, rtol=1e-5, atol=1e-5)
