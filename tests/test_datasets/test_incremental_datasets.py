"""Incremental splits against a brute-force recomputation from the masks."""
import os
import os.path as osp
import time

import numpy as np
import pytest
from PIL import Image

from mmseg_incremental import get_task
from mmseg_incremental.datasets import (EVAL_PROTOCOLS, SETTINGS,
                                        IncrementalADE20KDataset,
                                        IncrementalVOCDataset,
                                        load_class_presence)
from mmseg_incremental.datasets import class_presence

VOC_TASKS = ['19-1', '15-5', '15-1', '10-1', '5-3']
PIPELINE = [dict(type='LoadAnnotations')]


def _write_voc(root, label_sets, size=12, seed=0, split='train'):
    """A VOC tree whose image i holds exactly the labels label_sets[i]."""
    rng = np.random.default_rng(seed)
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    ids = []
    for i, labels in enumerate(label_sets):
        name = f'{split}_{i:04d}'
        labels = list(labels)
        mask = np.array(
            labels * (size * size // len(labels) + 1),
            dtype=np.uint8)[:size * size]
        mask = rng.permutation(mask).reshape(size, size)
        img = Image.fromarray(mask, mode='P')
        img.putpalette([v for c in range(256) for v in (c, c, c)])
        img.save(osp.join(root, 'SegmentationClass', name + '.png'))
        Image.fromarray(np.zeros(
            (size, size, 3),
            np.uint8)).save(osp.join(root, 'JPEGImages', name + '.jpg'))
        ids.append(name)
    with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'),
              'w') as f:
        f.write('\n'.join(ids) + '\n')
    return ids


def _random_label_sets(n, seed, num_classes=21):
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n):
        k = rng.integers(1, 4)
        fg = set(rng.choice(np.arange(1, num_classes), k, replace=False))
        labels = {0} | {int(c) for c in fg}
        if rng.random() < 0.3:
            labels.add(255)
        sets.append(sorted(labels))
    sets.append([0])  # background only
    sets.append([0, 255])
    return sets


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('voc'))
    train = _random_label_sets(300, seed=1)
    val = _random_label_sets(120, seed=2)
    _write_voc(root, train, split='train')
    _write_voc(root, val, split='val', seed=3)
    return root, train, val


def _build(root, cache, split='train', **kwargs):
    return IncrementalVOCDataset(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        pipeline=PIPELINE,
        presence_cache_dir=cache,
        **kwargs)


def _expected_train(label_sets, task, step, setting):
    new, seen = set(task.new_classes(step)), set(task.seen_classes(step))
    kept = []
    for i, labels in enumerate(label_sets):
        fg = set(labels) - {0, 255}
        if not fg & new:
            continue
        if setting in ('sequential', 'disjoint') and not fg <= seen:
            continue
        kept.append(i)
    return kept


def _expected_val(label_sets, task, step, protocol):
    seen = set(task.seen_classes(step))
    kept = []
    for i, labels in enumerate(label_sets):
        fg = set(labels) - {0, 255}
        if protocol == 'seen_only':
            ok = fg <= seen
        else:
            ok = bool(fg & (seen - {0}))
        if ok:
            kept.append(i)
    return kept


def _expected_label(raw, task, step, setting=None, protocol=None):
    out = task.output_index(step)
    old = set(task.old_classes(step)) - {0}
    if raw == 255:
        return 255
    if raw in out:
        if setting in ('disjoint', 'overlapped') and raw in old:
            return 0
        return out[raw]
    if protocol == 'unseen_as_background' or setting == 'overlapped':
        return 0
    return 255


def _index(ds):
    return [
        int(osp.basename(ds.get_data_info(i)['img_path'])[-8:-4])
        for i in range(len(ds))
    ]


@pytest.mark.parametrize('task_name', VOC_TASKS)
@pytest.mark.parametrize('setting', SETTINGS)
def test_train_split_matches_brute_force(voc, tmp_path, task_name, setting):
    root, train, _ = voc
    task = get_task('voc', task_name)
    per_step = []
    for step in range(task.num_steps):
        expected = _expected_train(train, task, step, setting)
        if not expected:
            with pytest.raises(ValueError, match='keeps no image'):
                _build(
                    root,
                    str(tmp_path),
                    task=task_name,
                    step=step,
                    setting=setting)
            per_step.append(set())
            continue
        ds = _build(
            root, str(tmp_path), task=task_name, step=step, setting=setting)
        assert _index(ds) == expected
        assert ds.metainfo['classes'] == tuple(
            IncrementalVOCDataset.METAINFO['classes'][c]
            for c in task.seen_classes(step))
        per_step.append(set(expected))
    if setting != 'overlapped':
        for a in range(len(per_step)):
            for b in range(a + 1, len(per_step)):
                assert not per_step[a] & per_step[b], (a, b)


@pytest.mark.parametrize('setting', SETTINGS)
def test_train_labels_follow_setting(voc, tmp_path, setting):
    root, train, _ = voc
    task = get_task('voc', '15-1')
    for step in (0, 1, 3):
        ds = _build(
            root, str(tmp_path), task='15-1', step=step, setting=setting)
        for i, idx in enumerate(_index(ds)[:25]):
            got = ds[i]['gt_seg_map']
            raw = np.asarray(Image.open(ds.get_data_info(i)['seg_map_path']))
            want = np.vectorize(
                lambda v: _expected_label(int(v), task, step, setting))(
                    raw)
            np.testing.assert_array_equal(got, want)
            assert set(np.unique(raw)) == set(train[idx])


@pytest.mark.parametrize('protocol', EVAL_PROTOCOLS)
def test_eval_protocols(voc, tmp_path, protocol):
    root, _, val = voc
    task = get_task('voc', '15-5')
    for step in range(task.num_steps):
        ds = _build(
            root,
            str(tmp_path),
            split='val',
            task='15-5',
            step=step,
            eval_protocol=protocol,
            test_mode=True)
        assert _index(ds) == _expected_val(val, task, step, protocol)
        assert ds.metainfo['class_steps'] == task.step_output_indices(step)
        for i in range(min(len(ds), 20)):
            got = ds[i]['gt_seg_map']
            raw = np.asarray(Image.open(ds.get_data_info(i)['seg_map_path']))
            want = np.vectorize(lambda v: _expected_label(
                int(v), task, step, protocol=protocol))(
                    raw)
            np.testing.assert_array_equal(got, want)


def test_custom_class_order(voc, tmp_path):
    root, train, _ = voc
    steps = [[0, 3, 7, 15], [1, 2], [20]]
    task = get_task('voc', dict(steps=steps))
    ds = _build(
        root,
        str(tmp_path),
        task=dict(steps=steps),
        step=1,
        setting='disjoint')
    assert ds.metainfo['classes'] == ('background', 'bird', 'car', 'person',
                                      'aeroplane', 'bicycle')
    assert _index(ds) == _expected_train(train, task, 1, 'disjoint')
    for i in range(len(ds)):
        raw = np.asarray(Image.open(ds.get_data_info(i)['seg_map_path']))
        got = ds[i]['gt_seg_map']
        # old classes 3, 7, 15 -> background; 1 -> 4, 2 -> 5
        want = raw.copy()
        want[np.isin(raw, [3, 7, 15])] = 0
        want[raw == 1], want[raw == 2] = 4, 5
        np.testing.assert_array_equal(got, want)


def test_presence_cache_hit_and_invalidation(tmp_path, monkeypatch):
    root = str(tmp_path / 'voc')
    sets = [[0, 1], [0, 2, 255], [0, 3]]
    ids = _write_voc(root, sets)
    paths = [osp.join(root, 'SegmentationClass', i + '.png') for i in ids]
    cache = str(tmp_path / 'cache')
    first = load_class_presence(paths, cache_dir=cache, nproc=1)
    assert [sorted(np.flatnonzero(r)) for r in first] == sets
    assert len(os.listdir(cache)) == 1

    reads = []
    real = class_presence._decode_mask
    monkeypatch.setattr(class_presence, '_decode_mask',
                        lambda p, data: reads.append(p) or real(p, data))
    again = load_class_presence(paths, cache_dir=cache, nproc=1)
    np.testing.assert_array_equal(again, first)
    assert reads == []  # served from the cache

    # Edit one mask: only that one is read again, and the change is seen.
    time.sleep(0.01)
    mask = np.zeros((12, 12), np.uint8)
    mask[:4] = 5
    img = Image.fromarray(mask, mode='P')
    img.putpalette([v for c in range(256) for v in (c, c, c)])
    img.save(paths[1])
    changed = load_class_presence(paths, cache_dir=cache, nproc=1)
    assert reads == [paths[1]]
    assert sorted(np.flatnonzero(changed[1])) == [0, 5]
    np.testing.assert_array_equal(changed[[0, 2]], first[[0, 2]])


def test_presence_scan_in_two_processes(tmp_path):
    root = str(tmp_path / 'voc')
    sets = _random_label_sets(150, seed=5)
    ids = _write_voc(root, sets)
    paths = [osp.join(root, 'SegmentationClass', i + '.png') for i in ids]
    got = load_class_presence(paths, cache_dir=str(tmp_path / 'c'), nproc=2)
    assert [sorted(np.flatnonzero(r)) for r in got] == sets


def test_split_shared_by_steps_and_settings(voc, tmp_path, monkeypatch):
    root, _, _ = voc
    cache = str(tmp_path)
    _build(root, cache, task='15-1', step=0)
    calls = []
    monkeypatch.setattr(class_presence, '_scan',
                        lambda *a: calls.append(a) or np.zeros((0, 256)))
    for setting in SETTINGS:
        for step in (1, 2):
            _build(root, cache, task='15-1', step=step, setting=setting)
    _build(root, cache, task='19-1', step=1)
    assert calls == []


@pytest.mark.parametrize('kwargs, match', [
    (dict(task='16-4'), 'Unknown voc task'),
    (dict(task='15-1', step=6), 'out of range'),
    (dict(task='15-1', setting='overlap'), 'Unknown setting'),
    (dict(task='15-1', eval_protocol='mib'), 'Unknown eval_protocol'),
    (dict(task='15-1', metainfo=dict(classes=('background', 'cat'))),
     'leave `metainfo.classes` out'),
])
def test_bad_arguments(voc, tmp_path, kwargs, match):
    root, _, _ = voc
    with pytest.raises(ValueError, match=match):
        _build(root, str(tmp_path), **kwargs)
    assert os.listdir(tmp_path) == []  # nothing written


def test_unreadable_mask_names_the_file(tmp_path):
    root = str(tmp_path / 'voc')
    ids = _write_voc(root, [[0, 1], [0, 2]])
    bad = osp.join(root, 'SegmentationClass', ids[1] + '.png')
    with open(bad, 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(ValueError, match=ids[1]):
        _build(root, str(tmp_path / 'c'), task='19-1')


def test_missing_mask_names_the_file(tmp_path):
    root = str(tmp_path / 'voc')
    ids = _write_voc(root, [[0, 1], [0, 2]])
    os.remove(osp.join(root, 'SegmentationClass', ids[0] + '.png'))
    with pytest.raises(FileNotFoundError, match=ids[0]):
        _build(root, str(tmp_path / 'c'), task='19-1')


def test_ade_keeps_zero_as_background(tmp_path):
    root = str(tmp_path / 'ade')
    sets = [[0, 5, 120], [0, 101], [3, 60], [0, 140, 150]]
    rng = np.random.default_rng(0)
    for sub in ('images/training', 'annotations/training'):
        os.makedirs(osp.join(root, sub))
    for i, labels in enumerate(sets):
        mask = rng.permutation(np.resize(np.array(labels, np.uint8), 144))
        Image.fromarray(mask.reshape(12, 12)).save(
            osp.join(root, 'annotations/training', f'a{i}.png'))
        Image.fromarray(np.zeros(
            (12, 12, 3),
            np.uint8)).save(osp.join(root, 'images/training', f'a{i}.jpg'))
    ds = IncrementalADE20KDataset(
        data_root=root,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        task='100-50',
        step=1,
        setting='overlapped',
        pipeline=PIPELINE,
        presence_cache_dir=str(tmp_path / 'c'))
    assert len(ds.metainfo['classes']) == 151
    assert ds.metainfo['classes'][0] == 'background'
    kept = [
        osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))
    ]
    assert kept == ['a0.jpg', 'a1.jpg', 'a3.jpg']
    seg = ds[0]['gt_seg_map']  # a0: 5 (old) -> 0, 120 new stays
    assert set(np.unique(seg)) == {0, 120}
    with pytest.raises(ValueError, match='reduce_zero_label=False'):
        IncrementalADE20KDataset(
            data_root=root, task='100-50', reduce_zero_label=True)


@pytest.mark.parametrize('kwargs, match', [
    (dict(data_root='/nonexistent/voc'), 'data_root .* does not exist'),
    (dict(ann_file='ImageSets/Segmentation/trainaug.txt'),
     'Split list .*trainaug.txt'),
    (dict(
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug')),
     'data_prefix.seg_map_path'),
])
def test_missing_paths_name_the_fix(voc, tmp_path, kwargs, match):
    root, _, _ = voc
    args = dict(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt')
    args.update(kwargs)
    with pytest.raises(FileNotFoundError, match=match):
        IncrementalVOCDataset(
            task='15-1', presence_cache_dir=str(tmp_path), **args)
    assert os.listdir(tmp_path) == []


def test_bad_data_is_named_at_build_time(tmp_path):
    """A label value that is no class and not 255, and an image whose mask
    has another size: one error naming every such file, before training."""
    root = str(tmp_path / 'voc')
    ids = _write_voc(root, [[0, 1], [0, 50], [0, 2, 255], [0, 3, 60]])
    with pytest.raises(ValueError) as info:
        _build(root, str(tmp_path / 'c'), task='15-1')
    text = str(info.value)
    assert text.startswith('2 mask(s) of ')
    assert f'{ids[1]}.png (values 50)' in text
    assert f'{ids[3]}.png (values 60)' in text
    assert ids[0] not in text and ids[2] not in text

    root = str(tmp_path / 'voc2')
    ids = _write_voc(root, [[0, 1], [0, 2]])
    Image.fromarray(np.zeros((12, 20, 3), np.uint8)).save(
        osp.join(root, 'JPEGImages', ids[1] + '.jpg'))
    with pytest.raises(ValueError, match=r'1 image\(s\) of .* differ in size '
                       rf'from their mask: \S*{ids[1]}.jpg 20x12 vs mask '
                       '12x12'):
        _build(root, str(tmp_path / 'c'), task='15-1')
