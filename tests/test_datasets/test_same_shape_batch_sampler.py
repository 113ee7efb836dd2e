"""Batched whole-image validation: same-shape batches, the same metrics as
one image at a time, and the ``val_batch_size`` scalar."""
import copy
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import DefaultSampler
from mmengine.runner import Runner
from PIL import Image

import mmseg_incremental  # noqa: F401
from mmseg.evaluation import IoUMetric
from mmseg.registry import DATASETS, MODELS
from mmseg.utils import register_all_modules
from mmseg_incremental.datasets import SameShapeBatchSampler, image_shape
from mmseg_incremental.planning import build_step_config
from mmseg_incremental.planning.plan import experiment_fingerprint_source
from mmseg_incremental.planning.scalars import apply_val_batch_size

#: (height, width) of the images, in index order: three shapes, mixed.
SHAPES = [(20, 28), (28, 20), (20, 28), (24, 24), (20, 28), (28, 20), (20, 28),
          (24, 24), (20, 28)]


@pytest.fixture
def voc_root(tmp_path):
    """A VOC-format folder of images of three shapes, labels 0..4."""
    rng = np.random.default_rng(0)
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(tmp_path / sub)
    names = []
    for i, (h, w) in enumerate(SHAPES):
        name = f'img{i}'
        names.append(name)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) \
            .save(tmp_path / 'JPEGImages' / f'{name}.jpg')
        label = rng.integers(0, 5, (h, w), dtype=np.uint8)
        label[:2] = 255
        Image.fromarray(label).save(tmp_path / 'SegmentationClass' /
                                    f'{name}.png')
    (tmp_path / 'ImageSets/Segmentation/val.txt').write_text('\n'.join(names) +
                                                             '\n')
    return str(tmp_path)


def _dataset_cfg(root: str) -> dict:
    return dict(
        type='PascalVOCDataset',
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ])


def _sampler(root: str, batch_size: int, **kwargs) -> SameShapeBatchSampler:
    dataset = DATASETS.build(_dataset_cfg(root))
    return SameShapeBatchSampler(
        DefaultSampler(dataset, shuffle=False, **kwargs), batch_size)


def test_batches_of_one_shape_every_index_once(voc_root):
    register_all_modules(init_default_scope=False)
    sampler = _sampler(voc_root, batch_size=2)
    batches = list(sampler)
    # Full batches when they fill, the partial ones after the last index in
    # the order their shape first came: (20,28) x5, (28,20) x2, (24,24) x2.
    assert batches == [[0, 2], [1, 5], [4, 6], [3, 7], [8]]
    assert len(sampler) == len(batches)
    for batch in batches:
        assert len({SHAPES[i] for i in batch}) == 1
    assert sorted(i for b in batches for i in b) == list(range(len(SHAPES)))
    assert [len(b) for b in _sampler(voc_root, batch_size=8)] == [5, 2, 2]


def test_one_rank_share_under_ddp(voc_root, monkeypatch):
    """Each rank batches only its own indices (DefaultSampler's share)."""
    register_all_modules(init_default_scope=False)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(
            'mmengine.dataset.sampler.get_dist_info',
            lambda rank=rank: (rank, 2))
        sampler = _sampler(voc_root, batch_size=4)
        share = list(sampler.sampler)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == sorted(share)
        assert len(sampler) == len(batches)
        seen += share
    # 9 images over 2 ranks: DefaultSampler pads to 10 (index 0 again).
    assert sorted(seen) == sorted(list(range(9)) + [0])


def test_exif_rotation_swaps_the_shape(tmp_path):
    path = str(tmp_path / 'rotated.jpg')
    img = Image.new('RGB', (30, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on decoding
    img.save(path, exif=exif)
    assert image_shape(path) == (30, 10)
    import mmcv
    assert mmcv.imread(path).shape[:2] == (30, 10)


def test_bad_arguments(voc_root):
    register_all_modules(init_default_scope=False)
    dataset = DATASETS.build(_dataset_cfg(voc_root))
    sampler = DefaultSampler(dataset, shuffle=False)
    with pytest.raises(ValueError, match='drop_last'):
        SameShapeBatchSampler(sampler, 2, drop_last=True)
    with pytest.raises(ValueError, match='positive int'):
        SameShapeBatchSampler(sampler, 0)
    with pytest.raises(ValueError, match='DefaultSampler'):
        SameShapeBatchSampler(list(range(3)), 2)


def _predict_all(model, root: str, batch_size: int):
    """Predictions and IoUMetric results over the folder."""
    loader_cfg = dict(
        batch_size=batch_size,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=_dataset_cfg(root))
    if batch_size > 1:
        loader_cfg['batch_sampler'] = dict(type='SameShapeBatchSampler')
    loader = Runner.build_dataloader(loader_cfg)
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = loader.dataset.metainfo
    predictions, sizes = {}, []
    for data in loader:
        sizes.append(len(data['inputs']))
        with torch.no_grad():
            outputs = model.val_step(data)
        metric.process(data, [out.to_dict() for out in outputs])
        for out in outputs:
            predictions[out.img_path] = out.pred_sem_seg.data.clone()
    return predictions, metric.evaluate(len(loader.dataset)), sizes


def test_same_predictions_and_metrics_as_one_image_at_a_time(voc_root):
    register_all_modules(init_default_scope=True)
    from test_models.utils import toy_model_cfg
    cfg = toy_model_cfg(21)
    cfg['data_preprocessor'].pop('size')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(cfg))
    model.init_weights()
    model.eval()
    one, one_metrics, one_sizes = _predict_all(model, voc_root, 1)
    batched, metrics, sizes = _predict_all(model, voc_root, 4)
    assert one_sizes == [1] * 9 and sizes == [4, 1, 2, 2]
    assert one.keys() == batched.keys()
    for path in one:
        assert torch.equal(one[path], batched[path]), path
    assert metrics == one_metrics


def _experiment_cfg(**overrides) -> Config:
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs/il/voc_15-1_ef-ld.py'))
    cfg.merge_from_dict(overrides)
    return cfg


def test_val_batch_size_scalar():
    register_all_modules(init_default_scope=True)
    plain = build_step_config(
        _experiment_cfg(), 1, work_dir='w', teacher_checkpoint='t.pth')
    assert plain.val_dataloader.batch_size == 1
    assert 'batch_sampler' not in plain.val_dataloader
    batched = build_step_config(
        _experiment_cfg(val_batch_size=8),
        1,
        work_dir='w',
        teacher_checkpoint='t.pth')
    for split in ('val', 'test'):
        loader = batched[f'{split}_dataloader']
        assert loader.batch_size == 8
        assert loader.batch_sampler == dict(type='SameShapeBatchSampler')
    # How the step evaluates, not what it learns: no fingerprint changes.
    assert experiment_fingerprint_source(_experiment_cfg()) == \
        experiment_fingerprint_source(_experiment_cfg(val_batch_size=8))


@pytest.mark.parametrize('value', [0, -2, 1.5, '8', True])
def test_val_batch_size_bad_values(value):
    cfg = Config(dict(val_dataloader=dict(batch_size=1)))
    with pytest.raises(ValueError, match='positive int'):
        apply_val_batch_size(cfg, value)
    assert cfg.val_dataloader == dict(batch_size=1)  # nothing changed


def test_val_batch_size_refuses_another_batch_sampler():
    cfg = Config(
        dict(
            val_dataloader=dict(
                batch_size=1, batch_sampler=dict(type='MySampler'))))
    before = copy.deepcopy(cfg.to_dict())
    with pytest.raises(ValueError, match='own batch_sampler'):
        apply_val_batch_size(cfg, 4)
    assert cfg.to_dict() == before
