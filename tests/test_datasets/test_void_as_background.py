"""MiB's void-as-background training labels (``void_as_background``).

MiB maps void (255) to background in its training labels
(fcdl94/MiB ``dataset/voc.py`` l.142-156); PLOP and the ILT rows keep it
ignored. Checked: the transform's values, where planning inserts it (the
training pipeline of MiB's rows only, every step), and a training sample
of the embedded benchmark against the same sample without it.
"""
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmseg.registry import DATASETS, TRANSFORMS
from mmseg_incremental.datasets.transforms import (VoidAsBackground,
                                                   insert_after_loading)
from mmseg_incremental.experiment import build_step_config
from test_experiment.utils import tiny_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIB = 'embedded/bench_15-1_mib-overlapped.py'
#: Rows that keep void ignored: PLOP, both ILT flavours' MiB re-run, FT.
OFF = ('embedded/bench_15-1_plop-overlapped.py',
       'embedded/bench_15-1_mib-disjoint_ilt.py', 'embedded/bench_15-1_ft.py',
       'il/plop/voc_15-1_overlapped.py', 'il/voc_15-1_mib-overlapped_ilt.py',
       'il/voc_15-1_mib-overlapped_ft.py')
ON = (MIB, 'embedded/bench_15-5_mib-overlapped.py',
      'il/mib/voc_15-1_overlapped.py', 'il/mib/voc_19-1_disjoint.py',
      'il/mib/ade_100-10.py')


def _kinds(pipeline):
    return [t['type'] for t in pipeline]


# ------------------------------------------------------------- transform
def test_transform_maps_only_void_to_background():
    raw = np.array([[0, 1, 255, 16], [254, 255, 20, 0]], dtype=np.uint8)
    results = dict(gt_seg_map=raw, seg_fields=['gt_seg_map'])
    out = TRANSFORMS.build(dict(type='VoidAsBackground'))(results)
    want = np.array([[0, 1, 0, 16], [254, 0, 20, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(out['gt_seg_map'], want)
    assert out['gt_seg_map'].dtype == np.uint8
    # The loaded array is not written (a new one).
    assert raw[0, 2] == 255 and raw[1, 1] == 255
    # Other labels on request.
    other = VoidAsBackground(
        void_index=254,
        background_index=7)(dict(gt_seg_map=raw.copy()))['gt_seg_map']
    np.testing.assert_array_equal(other[1], [7, 255, 20, 0])
    with pytest.raises(KeyError, match='after LoadAnnotations'):
        VoidAsBackground()(dict(img=np.zeros((2, 2, 3))))


def test_insert_after_loading():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='mmseg.LoadAnnotations'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs')
    ]
    assert insert_after_loading(pipeline)
    assert _kinds(pipeline) == [
        'LoadImageFromFile', 'mmseg.LoadAnnotations', 'VoidAsBackground',
        'RandomFlip', 'PackSegInputs'
    ]
    assert not insert_after_loading(pipeline)  # once
    assert _kinds(pipeline).count('VoidAsBackground') == 1
    with pytest.raises(ValueError, match='LoadAnnotations'):
        insert_after_loading([dict(type='LoadImageFromFile')])


# -------------------------------------------------------------- planning
def _step(rel, step):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', rel))
    return cfg, build_step_config(cfg, step, 'w',
                                  None if step == 0 else 'prev.pth')


@pytest.mark.parametrize('rel', ON)
def test_mib_rows_train_void_as_background_at_every_step(rel):
    for step in (0, 1):
        cfg, step_cfg = _step(rel, step)
        assert cfg.void_as_background is True
        train = _kinds(step_cfg.train_dataloader.dataset.pipeline)
        load = train.index('LoadAnnotations')
        assert train[load + 1] == 'VoidAsBackground', (rel, step)
        assert train.count('VoidAsBackground') == 1
        for split in ('val', 'test'):
            kinds = _kinds(step_cfg[f'{split}_dataloader'].dataset.pipeline)
            assert 'VoidAsBackground' not in kinds, (rel, step, split)
        # The setting is the experiment's: the step config drops it.
        assert 'void_as_background' not in step_cfg


@pytest.mark.parametrize('rel', OFF)
def test_plop_and_ilt_rows_keep_void_ignored(rel):
    cfg, step_cfg = _step(rel, 1)
    assert cfg.get('void_as_background', False) is False
    for split in ('train', 'val', 'test'):
        kinds = _kinds(step_cfg[f'{split}_dataloader'].dataset.pipeline)
        assert 'VoidAsBackground' not in kinds, (rel, split)


# ----------------------------------------------- the embedded benchmark
def _train_set(rel, data_root, step):
    cfg = tiny_cfg(osp.basename(rel), data_root, max_step=step)
    step_cfg = build_step_config(cfg, step, 'w',
                                 None if step == 0 else 'prev.pth')
    return DATASETS.build(step_cfg.train_dataloader.dataset)


def _item(dataset, index, seed):
    """The pipeline's output for ``index`` with the generators seeded (the
    same flip for both datasets)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return dataset[index]['data_samples'].gt_sem_seg.data[0].numpy()


@pytest.mark.parametrize('step', [0, 1])
def test_mib_training_samples_have_no_void(embedded_voc, step):
    mib = _train_set(MIB, embedded_voc, step)
    plop = _train_set('embedded/bench_15-1_plop-overlapped.py', embedded_voc,
                      step)
    assert len(mib) == len(plop) > 0  # the same overlapped split
    checked = 0
    for index in range(min(len(mib), 8)):
        info = mib.get_data_info(index)
        assert info['img_path'] == plop.get_data_info(index)['img_path']
        raw = np.array(Image.open(info['seg_map_path']))
        if not (raw == 255).any():
            continue
        got = _item(mib, index, seed=index)
        kept = _item(plop, index, seed=index)
        # PLOP's sample keeps every void pixel (a flip moves, not drops).
        assert (kept == 255).sum() == (raw == 255).sum() > 0
        # MiB's is the same sample with those pixels background, and
        # nothing else changed.
        assert not (got == 255).any()
        np.testing.assert_array_equal(got, np.where(kept == 255, 0, kept))
        checked += 1
    assert checked > 0
