"""DeepLabV2Head: the sum of four dilated 3x3 classifiers."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData

import mmseg_incremental  # noqa: F401
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def _head(**kwargs):
    cfg = dict(type='DeepLabV2Head', in_channels=6, num_classes=5)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_output_is_sum_of_dilated_convs():
    torch.manual_seed(0)
    head = _head()
    head.init_weights()
    with torch.no_grad():
        for conv in head.aspp:
            conv.bias.normal_()
    x = torch.randn(2, 6, 30, 30)
    out = head([torch.zeros(1), x])  # in_index=-1 picks the last level
    expected = sum(
        F.conv2d(x, conv.weight, conv.bias, padding=d, dilation=d)
        for conv, d in zip(head.aspp, (6, 12, 18, 24)))
    torch.testing.assert_close(out, expected)
    assert out.shape == (2, 5, 30, 30)


def test_one_output_pixel_by_hand():
    # Dilation 2, padding 2: output (0, 0) reads input rows/cols 0 and 2.
    head = _head(in_channels=1, num_classes=1, dilations=(2, ))
    with torch.no_grad():
        head.aspp[0].weight.copy_(torch.arange(9.).view(1, 1, 3, 3))
        head.aspp[0].bias.fill_(0.5)
    x = torch.arange(16.).view(1, 1, 4, 4)
    out = head([x])
    # taps (1,1),(1,2),(2,1),(2,2) of the kernel hit x[0,0],x[0,2],x[2,0],
    # x[2,2] = 0, 2, 8, 10 with weights 4, 5, 7, 8.
    assert out[0, 0, 0,
               0].item() == pytest.approx(4 * 0 + 5 * 2 + 7 * 8 + 8 * 10 + 0.5)


def test_the_branches_are_the_classifier():
    head = _head()
    assert not hasattr(head, 'conv_seg')
    keys = sorted(head.state_dict())
    assert keys == sorted(f'aspp.{i}.{p}' for i in range(4)
                          for p in ('weight', 'bias'))
    assert all(v.shape[0] == 5 for v in head.state_dict().values())
    assert [c.dilation for c in head.aspp] == [(d, d) for d in (6, 12, 18, 24)]
    assert head.dropout is None


def test_init_normal_001_zero_bias():
    torch.manual_seed(0)
    head = _head(in_channels=64, num_classes=21)
    head.init_weights()
    for conv in head.aspp:
        assert torch.equal(conv.bias, torch.zeros(21))
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_loss_is_mmseg_cross_entropy():
    torch.manual_seed(0)
    head = _head(
        in_channels=4,
        num_classes=3,
        dilations=(1, 2),
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    feats = torch.randn(1, 4, 4, 4)
    label = torch.randint(0, 3, (1, 8, 8))
    label[0, 0] = 255
    sample = SegDataSample(gt_sem_seg=PixelData(data=label))
    losses = head.loss([feats], [sample], None)
    logits = F.interpolate(
        head([feats]), size=(8, 8), mode='bilinear', align_corners=False)
    expected = F.cross_entropy(logits, label, ignore_index=255)
    assert losses['loss_ce'].item() == pytest.approx(expected.item())


def test_bad_args():
    with pytest.raises(ValueError, match='channels .* must equal'):
        _head(channels=512)
    with pytest.raises(ValueError, match='dilations'):
        _head(dilations=())
