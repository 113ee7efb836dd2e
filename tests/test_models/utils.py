"""Toy segmentors for the model and hook tests (CPU, milliseconds)."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.structures import PixelData
from torch import Tensor

import mmseg_incremental  # noqa: F401  (registers the plugin)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


@MODELS.register_module(force=True)
class ExampleILTBackbone(BaseModule):
    """Two conv-BN-ReLU stages (stride 2 then 1), both levels returned."""

    def __init__(self, in_channels: int = 3, channels: int = 8) -> None:
        super().__init__(init_cfg=[
            dict(type='Kaiming', layer='Conv2d'),
            dict(type='Constant', val=1, layer='_BatchNorm')
        ])
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        x1 = torch.relu(self.bn1(self.conv1(x)))
        x2 = torch.relu(self.bn2(self.conv2(x1)))
        return x1, x2


def toy_model_cfg(num_classes: int,
                  head: str = 'DeepLabV2Head',
                  channels: int = 8) -> dict:
    """An ``EncoderDecoder`` config over :class:`ExampleILTBackbone`."""
    ce = dict(type='CrossEntropyLoss', avg_non_ignore=True)
    if head == 'DeepLabV2Head':
        decode_head = dict(
            type='DeepLabV2Head',
            in_channels=channels,
            in_index=1,
            dilations=(1, 2, 3),
            num_classes=num_classes,
            loss_decode=ce)
    else:
        decode_head = dict(
            type='FCNHead',
            in_channels=channels,
            in_index=1,
            channels=4,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.0,
            num_classes=num_classes,
            loss_decode=ce)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[120.0, 110.0, 100.0],
            std=[60.0, 60.0, 60.0],
            bgr_to_rgb=False,
            size=(16, 16),
            pad_val=0,
            seg_pad_val=255),
        backbone=dict(type='ExampleILTBackbone', channels=channels),
        decode_head=decode_head,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def distill_cfg(teacher_ckpt: str, num_classes: int, **kwargs) -> dict:
    """A ``DistillEncoderDecoder`` config of the same toy architecture."""
    head = kwargs.pop('head', 'DeepLabV2Head')
    cfg = toy_model_cfg(num_classes, head=head)
    cfg.update(type='DistillEncoderDecoder', teacher_checkpoint=teacher_ckpt)
    cfg.update(kwargs)
    return cfg


def make_teacher(path: str,
                 num_classes: int,
                 seed: int = 0,
                 head: str = 'DeepLabV2Head',
                 cfg: Optional[dict] = None) -> nn.Module:
    """Build, initialise and perturb a toy M_{k-1}; save it to ``path``.

    Biases and BN statistics are randomised so that copies are visible.
    The checkpoint is ``{'state_dict': ..., 'meta': {...}}`` of plain types.
    ``cfg`` replaces the toy model config (``num_classes`` must match it).
    """
    torch.manual_seed(seed)
    model = MODELS.build(cfg or toy_model_cfg(num_classes, head=head))
    model.init_weights()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                if 'running_var' in name:
                    tensor.uniform_(0.5, 2.0)
                else:
                    tensor.add_(0.1 * torch.randn_like(tensor))
    model.eval()
    torch.save(
        {
            'state_dict': model.state_dict(),
            'meta': dict(step=0, num_classes=num_classes)
        }, path)
    return model


def make_batch(num_classes: int,
               batch_size: int = 2,
               size: int = 16,
               seed: int = 1,
               labels: Optional[List[Tensor]] = None) -> dict:
    """A data batch as the dataloader yields it (uint8 images, labels)."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(batch_size):
        inputs.append(
            torch.randint(
                0, 256, (3, size, size), generator=gen, dtype=torch.uint8))
        if labels is None:
            label = torch.randint(
                0, num_classes, (1, size, size), generator=gen)
            label[:, :2, :] = 255
        else:
            label = labels[i]
        sample = SegDataSample(
            gt_sem_seg=PixelData(data=label.long()),
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def state_copy(module: nn.Module) -> dict:
    """Detached clones of a module's parameters and buffers."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
