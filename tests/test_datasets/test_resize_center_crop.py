"""MiB / PLOP's evaluation view (``eval_crop``): the transform against a
hand computation, and which configs evaluate it."""
import glob
import os.path as osp

import numpy as np
import pytest

import mmseg_incremental  # noqa: F401
from mmseg_incremental.datasets.transforms import (ResizeCenterCrop,
                                                   insert_eval_crop)
from mmseg_incremental.planning import build_step_config
from mmseg_incremental.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_crop_of_a_wide_image_by_hand():
    # 4 x 8 image, size 2: resized to 2 x 4 (nearest for the label), then
    # columns 1..2 kept.
    label = np.repeat(np.arange(8, dtype=np.uint8)[None], 4, 0)
    img = np.stack([label.astype(np.float32)] * 3, -1)
    out = ResizeCenterCrop(2).transform(
        dict(img=img, gt_seg_map=label, ori_shape=(4, 8), img_shape=(4, 8)))
    assert out['img_shape'] == out['ori_shape'] == (2, 2)
    # Nearest as PIL (MiB): output column j reads floor((j + 0.5) * 2).
    resized = label[:2, [1, 3, 5, 7]]
    np.testing.assert_array_equal(out['gt_seg_map'], resized[:, 1:3])
    assert out['img'].shape == (2, 2, 3)
    # Bilinear of a horizontal ramp: the means of the input pairs.
    np.testing.assert_allclose(out['img'][0, :, 0], [2.5, 4.5])


def test_tall_image_keeps_its_middle_rows():
    label = np.repeat(np.arange(6, dtype=np.uint8)[:, None], 3, 1)
    out = ResizeCenterCrop(3).transform(
        dict(img=np.zeros((6, 3, 3), np.uint8), gt_seg_map=label))
    np.testing.assert_array_equal(out['gt_seg_map'][:, 0], [1, 2, 3])


@pytest.mark.parametrize('size', [0, -2, 1.5, True, None])
def test_bad_size_is_refused(size):
    with pytest.raises(ValueError, match='use an int >= 1'):
        ResizeCenterCrop(size)


def test_insert_replaces_resizing_and_loads_labels_first():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(2048, 512), keep_ratio=True),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    assert [s['type'] for s in insert_eval_crop(pipeline, 512)] == [
        'LoadImageFromFile', 'LoadAnnotations', 'ResizeCenterCrop',
        'PackSegInputs'
    ]
    with pytest.raises(ValueError, match='needs LoadAnnotations'):
        insert_eval_crop([dict(type='LoadImageFromFile')], 512)


def _eval_types(path, step=1):
    cfg = load_config(path)
    step_cfg = build_step_config(cfg, step, '', teacher_checkpoint='t.pth')
    return ([s['type'] for s in step_cfg.val_dataloader.dataset.pipeline],
            [s['type'] for s in step_cfg.test_dataloader.dataset.pipeline],
            [s['type'] for s in step_cfg.train_dataloader.dataset.pipeline])


@pytest.mark.parametrize(
    'path',
    sorted(glob.glob(osp.join(ROOT, 'configs', 'il', 'mib', '*.py')) +
           glob.glob(osp.join(ROOT, 'configs', 'il', 'plop', '*.py'))),
    ids=lambda p: osp.relpath(p, ROOT))
def test_mib_and_plop_rows_evaluate_the_512_crop(path):
    val, test, train = _eval_types(path)
    crop = ['LoadImageFromFile', 'LoadAnnotations', 'ResizeCenterCrop',
            'PackSegInputs']
    assert val == crop and test == crop
    assert 'ResizeCenterCrop' not in train
    assert load_config(path).eval_crop == 512


@pytest.mark.parametrize('name', [
    'voc_19-1_ld.py', 'voc_15-1_ef-ld.py', 'ade_100-50_ld.py',
    'voc_15-1_mib-overlapped_ilt.py'
])
def test_ilt_rows_evaluate_whole_images(name):
    val, test, _ = _eval_types(osp.join(ROOT, 'configs', 'il', name))
    assert 'ResizeCenterCrop' not in val + test
