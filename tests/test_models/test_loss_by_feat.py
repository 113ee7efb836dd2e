"""L_CE without host syncs: the same values as mmseg's ``loss_by_feat``, and
no training step of any method stops the host on a GPU (checked on the CPU
by the aten ops that would: ``.item()``, ``nonzero``, boolean indexing)."""
import os.path as osp
import traceback
from typing import List

import pytest
import torch
from mmengine.structures import PixelData
from torch.utils._python_dispatch import TorchDispatchMode

import mmseg_incremental  # noqa: F401
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy as mmseg_accuracy
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg_incremental.models.decode_heads.loss_by_feat import (
    accuracy, decode_loss_by_feat, has_mmseg_loss_by_feat)
from test_models.utils import (distill_cfg, make_batch, make_teacher,
                               toy_model_cfg)

#: aten ops that copy a GPU value to the host (a sync) or need one.
_SYNC_OPS = ('_local_scalar_dense', 'nonzero', 'masked_select', 'unique',
             'item')


class SyncDetector(TorchDispatchMode):
    """Records where a host sync would happen on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.found: List[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        indices = [a for a in args if isinstance(a, (list, tuple))]
        boolean = 'index' in name and any(
            isinstance(t, torch.Tensor) and t.dtype == torch.bool
            for seq in indices for t in seq)
        if boolean or any(op in name for op in _SYNC_OPS):
            frame = [
                f for f in traceback.extract_stack()
                if 'site-packages/torch' not in f.filename
            ][-2]
            self.found.append(f'{name} at {frame.filename}:{frame.lineno}')
        return func(*args, **(kwargs or {}))


def _samples(labels: torch.Tensor) -> list:
    return [
        SegDataSample(gt_sem_seg=PixelData(data=label[None]))
        for label in labels
    ]


def _head(loss_decode) -> BaseDecodeHead:
    return MODELS.build(
        dict(
            type='DeepLabV2Head',
            in_channels=4,
            dilations=(1, ),
            num_classes=5,
            loss_decode=loss_decode))


def _logits_and_labels(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 6, 6, generator=gen, requires_grad=True)
    labels = torch.randint(0, 5, (3, 12, 12), generator=gen)
    labels[0, :4] = 255
    labels[2] = 255  # an image without a labelled pixel
    return logits, labels


CE = dict(type='CrossEntropyLoss', avg_non_ignore=True)


@pytest.mark.parametrize(
    'loss_decode',
    [
        CE,
        dict(type='CrossEntropyLoss', avg_non_ignore=False),
        dict(type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=0.4),
        dict(type='CrossEntropyLoss', avg_non_ignore=True, reduction='sum'),
        [CE, dict(type='DiceLoss', loss_name='loss_dice')],
        [CE, dict(CE, loss_weight=0.5)],  # repeated name: summed
    ])
def test_same_losses_and_grads_as_mmseg(loss_decode):
    head = _head(loss_decode)
    logits, labels = _logits_and_labels()
    samples = _samples(labels)
    ours = head.loss_by_feat(logits, samples)
    ours_grad, = torch.autograd.grad(
        sum(v for k, v in ours.items() if 'loss' in k), logits)
    theirs = BaseDecodeHead.loss_by_feat(head, logits, samples)
    theirs_grad, = torch.autograd.grad(
        sum(v for k, v in theirs.items() if 'loss' in k), logits)
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key].shape == theirs[key].shape, key
        torch.testing.assert_close(
            ours[key], theirs[key], rtol=1e-6, atol=0, msg=key)
    torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-6, atol=1e-9)


def test_mean_over_labelled_pixels_by_hand():
    # Two labelled pixels, -log softmax of their logits: (l0 + l1) / 2.
    head = _head(CE)
    logits = torch.zeros(1, 5, 2, 2)
    logits[0, 3, 0, 0] = 2.0
    labels = torch.full((1, 2, 2), 255)
    labels[0, 0, 0], labels[0, 1, 1] = 3, 1
    losses = head.loss_by_feat(logits, _samples(labels))
    nll_a = -torch.log_softmax(torch.tensor([0., 0, 0, 2, 0]), 0)[3]
    nll_b = -torch.log_softmax(torch.zeros(5), 0)[1]
    torch.testing.assert_close(losses['loss_ce'], (nll_a + nll_b) / 2)
    # pixel (0, 0) is right (class 3 wins), (1, 1) is a tie won by class 0.
    torch.testing.assert_close(losses['acc_seg'], torch.tensor([50.0]))


def test_accuracy_matches_mmseg():
    logits, labels = _logits_and_labels(seed=3)
    logits = torch.nn.functional.interpolate(logits.detach(), size=(12, 12))
    for ignore in (255, 2):
        torch.testing.assert_close(
            accuracy(logits, labels, ignore),
            mmseg_accuracy(logits, labels, ignore_index=ignore),
            rtol=1e-6,
            atol=0)
    everything_ignored = torch.full_like(labels, 255)
    torch.testing.assert_close(
        accuracy(logits, everything_ignored, 255),
        mmseg_accuracy(logits, everything_ignored, ignore_index=255))


def test_plop_weights_given_to_decode_loss_by_feat():
    head = _head(CE)
    logits, labels = _logits_and_labels(seed=5)
    gen = torch.Generator().manual_seed(0)
    weight = torch.rand(labels.shape, generator=gen)
    losses = decode_loss_by_feat(head, logits, labels, weight)
    up = torch.nn.functional.interpolate(
        logits, size=(12, 12), mode='bilinear', align_corners=False)
    nll = torch.nn.functional.cross_entropy(
        up, labels, ignore_index=255, reduction='none')
    expected = (nll * weight).sum() / (labels != 255).sum()
    torch.testing.assert_close(losses['loss_ce'], expected)


def test_which_heads_use_it():
    assert has_mmseg_loss_by_feat(_head(CE))
    fcn = MODELS.build(toy_model_cfg(3, head='FCNHead')['decode_head'])
    assert has_mmseg_loss_by_feat(fcn)

    class OwnLoss(type(fcn)):

        def loss_by_feat(self, seg_logits, batch_data_samples):
            return dict(loss_own=seg_logits.sum())

    own = OwnLoss(
        **{
            k: v
            for k, v in toy_model_cfg(3, head='FCNHead')
            ['decode_head'].items() if k != 'type'
        })
    assert not has_mmseg_loss_by_feat(own)


def test_detector_sees_mmseg_syncs():
    """The detector below can fail: mmseg's own loss_by_feat syncs three
    times (the .item() count, two boolean selections in accuracy)."""
    head = _head(CE)
    logits, labels = _logits_and_labels()
    with SyncDetector() as detector:
        BaseDecodeHead.loss_by_feat(head, logits, _samples(labels))
    assert len(detector.found) == 3, detector.found
    with SyncDetector() as detector:
        head.loss_by_feat(logits, _samples(labels))
    assert detector.found == []


METHODS = {
    'FT':
    dict(),
    "L'_D":
    dict(distill_output=dict(type='OutputDistillLoss')),
    "L''_D":
    dict(distill_feature=dict(type='FeatureDistillLoss')),
    "EF+L'_D":
    dict(freeze_encoder=True, distill_output=dict(type='OutputDistillLoss')),
    'MiB':
    dict(
        decode_loss=dict(type='UnbiasedCrossEntropyLoss'),
        distill_output=dict(type='UnbiasedDistillLoss', loss_weight=10.0),
        new_class_init='background'),
    'PLOP':
    dict(
        distill_pod=dict(type='PODLoss'),
        pseudo_label=dict(type='entropy', threshold=0.001),
        new_class_init='background'),
}


@pytest.mark.parametrize('method', list(METHODS))
def test_training_step_has_no_host_sync(tmp_path, method):
    """Forward, losses and backward of a step of each method, as mmengine's
    ``train_step`` runs them (data preprocessing excluded: it moves the
    batch to the device), after a first step (EF compares the frozen
    encoder with the teacher's once, with one sync)."""
    ckpt = osp.join(tmp_path, 'teacher.pth')
    make_teacher(ckpt, num_classes=3, seed=0)
    cfg = distill_cfg(ckpt, num_classes=4, **METHODS[method])
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(make_batch(4, seed=2), True)
    if getattr(model, 'pseudo_label', None) is not None:
        model.fit_pseudo_label_thresholds([(data['inputs'],
                                            data['data_samples'])])
    for _ in range(2):
        with SyncDetector() as detector:
            losses = model.loss(data['inputs'], data['data_samples'])
            total, _ = model.parse_losses(losses)
            total.backward()
    assert detector.found == [], detector.found
    assert torch.isfinite(total)
