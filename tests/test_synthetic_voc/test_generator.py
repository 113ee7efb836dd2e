"""The embedded benchmark's generator (``mmseg_incremental.synthetic_voc``,
docs/design.md §7)."""
import ast
import hashlib
import json
import os
import os.path as osp
import sys
from dataclasses import fields

import numpy as np
import pytest
from PIL import Image

import mmseg_incremental.synthetic_voc as benchmark_pkg
from mmseg_incremental.synthetic_voc import (APPEARANCES, GENERATOR_VERSION,
                                             LOOKALIKES, SCENES, VOC_CLASSES,
                                             VOC_PALETTE, generate_benchmark)
from mmseg_incremental.synthetic_voc import generate as generate_module
from mmseg_incremental.synthetic_voc.generate import make_image
from mmseg_incremental.synthetic_voc.render import (border_band, render_scene,
                                                    smooth_noise)
from mmseg_incremental.synthetic_voc.scene import Scene, Shape, compose_scene
from mmseg_incremental.tasks import get_task

SMALL = dict(num_train=200, num_val=40, image_size=64, seed=0)
# The module's benchmarks (one of the default size) are made once: one
# pytest-xdist worker runs the module.
pytestmark = pytest.mark.xdist_group('synthetic_voc')


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('small') / 'voc')
    return root, generate_benchmark(root, **SMALL)


@pytest.fixture(scope='module')
def default(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('default') / 'voc')
    return root, generate_benchmark(root)


def _ids(root, split):
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       f'{split}.txt')) as f:
        return f.read().split()


def _masks(root, split):
    return {
        i: np.asarray(
            Image.open(osp.join(root, 'SegmentationClass', f'{i}.png')))
        for i in _ids(root, split)
    }


def _foreground(root, split):
    """Foreground classes of each image, read from its mask."""
    return [
        set(np.unique(m).tolist()) - {0, 255}
        for m in _masks(root, split).values()
    ]


def _tree_hashes(root):
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            path = osp.join(d, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path,
                                root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_voc_names_and_palette():
    assert len(VOC_CLASSES) == 21
    assert VOC_CLASSES[0] == 'background' and VOC_CLASSES[15] == 'person'
    assert VOC_CLASSES[20] == 'tvmonitor' and VOC_CLASSES[11] == 'diningtable'
    assert len(VOC_PALETTE) == 256
    # Bits of the id, spread over R, G, B from the most significant bit.
    assert VOC_PALETTE[0] == (0, 0, 0)
    assert VOC_PALETTE[1] == (128, 0, 0)
    assert VOC_PALETTE[7] == (128, 128, 128)
    assert VOC_PALETTE[8] == (64, 0, 0)
    assert VOC_PALETTE[20] == (0, 64, 128)
    assert VOC_PALETTE[255] == (224, 224, 192)
    voc = pytest.importorskip('mmseg.datasets').PascalVOCDataset.METAINFO
    assert VOC_CLASSES == tuple(voc['classes'])
    assert [list(c) for c in VOC_PALETTE[:21]] == voc['palette']


def test_lookalikes_differ_in_one_cue():
    for a, b, _ in LOOKALIKES:
        diff = [
            f.name for f in fields(APPEARANCES[a]) if getattr(
                APPEARANCES[a], f.name) != getattr(APPEARANCES[b], f.name)
        ]
        assert len(diff) == 1, (VOC_CLASSES[a], VOC_CLASSES[b], diff)
    # Any other two classes differ in at least two of shape/colour/texture.
    pairs = {(a, b) for a, b, _ in LOOKALIKES}
    ids = sorted(APPEARANCES)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if (a, b) not in pairs:
                la, lb = APPEARANCES[a], APPEARANCES[b]
                same = (la.shape == lb.shape) + (la.colour == lb.colour) + (
                    la.texture == lb.texture)
                assert same <= 1, (VOC_CLASSES[a], VOC_CLASSES[b])


def test_border_band_by_hand():
    label = np.zeros((6, 6), np.uint8)
    label[2:4, 2:4] = 7
    band = border_band(label, 1)
    # Radius 1 around the 2x2 block: the block and its 8-neighbour ring.
    expected = np.zeros((6, 6), bool)
    expected[1:5, 1:5] = True
    np.testing.assert_array_equal(band, expected)
    # The image border is no boundary.
    label[0, :] = 3
    band = border_band(label, 1)
    assert band[0].all() and band[1].all() and not band[5].any()


def test_smooth_noise():
    a = smooth_noise(np.random.default_rng(0), 64, 4)
    b = smooth_noise(np.random.default_rng(0), 64, 4)
    assert a.shape == (64, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    grid = np.random.default_rng(0).random((5, 5), dtype=np.float32)
    # Bilinear: values stay within the grid's range; one output pixel is
    # 5/64 of a grid cell, so neighbours differ by at most that much.
    assert grid.min() - 1e-6 <= a.min() and a.max() <= grid.max() + 1e-6
    assert np.abs(np.diff(a, axis=0)).max() <= 5 / 64 + 1e-6
    assert np.abs(np.diff(a, axis=1)).max() <= 5 / 64 + 1e-6


def test_render_known_scene():
    """A flat 20x10 px box on a two-tone background, pixel by pixel."""
    size = 64
    horizon = np.full(size, 32.0, np.float32)
    red, blue = np.float32([200, 20, 20]), np.float32([0, 0, 255])
    box = Shape(
        'rect',
        'flat',
        red,
        blue,
        cx=20,
        cy=40,
        hw=10,
        hh=5,
        angle=0.0,
        flip=False,
        cycles=4,
        label=7)
    scene = Scene('vehicles', np.float32([100, 150, 200]),
                  np.float32([60, 60, 60]), horizon, [], [box])
    image, label = render_scene(scene, size, np.random.default_rng(0))
    assert image.dtype == np.uint8 and image.shape == (size, size, 3)
    # Labels: the box, a 255 band 1 px on each side of its outline.
    assert set(np.unique(label).tolist()) == {0, 7, 255}
    assert (label[36:45, 11:30] == 7).all()
    assert (label[35, 10:31] == 255).all() and (label[45, 10:31] == 255).all()
    assert (label[:34] == 0).all() and (label[47:] == 0).all()
    assert (label[:, :9] == 0).all() and (label[:, 32:] == 0).all()
    # Colours: the box's own colour (the shading is 1 at its centre, at
    # most 1.12 at the corners), pixel noise of +-16.
    centre = image[40, 20].astype(int)
    assert np.abs(centre - [200, 20, 20]).max() <= 17
    body = image[37:44, 12:29].reshape(-1, 3).astype(int)
    assert body[:, 0].min() >= 200 * 0.88 - 17 and body[:, 2].max() <= 40
    # Sky above the horizon, ground below (lighting +-17.5%, grain +-20).
    sky, ground = image[:20].reshape(-1, 3), image[50:, 40:].reshape(-1, 3)
    assert np.abs(sky.mean(0) - [100, 150, 200]).max() < 25
    assert np.abs(ground.mean(0) - [60, 60, 60]).max() < 25


def test_compose_scene_follows_scene_types():
    counts = {}
    for i in range(300):
        scene = compose_scene(np.random.default_rng(i), 64)
        classes = {o.label for o in scene.objects}
        assert 1 <= len(scene.objects) <= 4
        assert classes - {15} <= set(SCENES[scene.kind])
        assert all(o.label is None for o in scene.clutter)
        for o in scene.objects:
            assert 0 <= o.cx <= 64 and 0 <= o.cy <= 64
        counts[scene.kind] = counts.get(scene.kind, 0) + 1
    assert set(counts) == set(SCENES)


def test_make_image_is_deterministic():
    a = make_image(5, 'train', 3, 48)
    b = make_image(5, 'train', 3, 48)
    c = make_image(5, 'val', 3, 48)
    for x, y in zip(a[:2], b[:2]):
        np.testing.assert_array_equal(x, y)
    assert a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


def test_tree_layout_and_masks(small):
    root, stats = small
    assert sorted(os.listdir(root)) == [
        'ImageSets', 'JPEGImages', 'SegmentationClass', 'benchmark.json'
    ]
    train, val = _ids(root, 'train'), _ids(root, 'val')
    assert len(train) == 200 and len(val) == 40
    assert not set(train) & set(val)
    assert len(os.listdir(osp.join(root, 'JPEGImages'))) == 240
    palette = [x for c in VOC_PALETTE for x in c]
    allowed = set(range(21)) | {255}
    for i in train + val:
        with Image.open(osp.join(root, 'JPEGImages', f'{i}.jpg')) as img:
            assert img.format == 'JPEG' and img.mode == 'RGB'
            assert img.size == (64, 64)
        with Image.open(osp.join(root, 'SegmentationClass', f'{i}.png')) as m:
            assert m.format == 'PNG' and m.mode == 'P'
            assert m.getpalette() == palette
            values = set(np.unique(np.asarray(m)).tolist())
        assert values <= allowed
        assert values & set(range(1, 21)), f'{i} has no object'
    with open(osp.join(root, 'benchmark.json')) as f:
        manifest = json.load(f)
    assert manifest['parameters'] == dict(SMALL, version=GENERATOR_VERSION)
    assert manifest['stats'] == stats


def test_void_band_on_object_borders(small):
    root, _ = small
    void_total = void_near_object = void_far = 0
    for mask in _masks(root, 'train').values():
        # No two different labels touch: a 255 band separates them all.
        for a, b in ((mask[:, :-1], mask[:, 1:]), (mask[:-1], mask[1:])):
            touching = (a != b) & (a != 255) & (b != 255)
            assert not touching.any()
        # Every object touches the band.
        near_void = _near(mask, 1, lambda m: m == 255)
        for c in set(np.unique(mask).tolist()) - {0, 255}:
            assert (near_void & (mask == c)).any()
        void = mask == 255
        void_total += void.sum()
        void_near_object += (void & _near(mask, 2, lambda m:
                                          (m != 255) & (m != 0))).sum()
        void_far += (void & ~_near(mask, 2, lambda m: m != 255)).sum()
    # The band hugs the objects (2 px wide at 64 px): nearly every void
    # pixel lies within 2 px of an object pixel; only thin object parts,
    # void throughout, lie farther from any labelled pixel.
    assert void_near_object >= 0.95 * void_total
    assert void_far <= 0.01 * void_total


def _near(mask, radius, select):
    """Pixels within ``radius`` (Chebyshev) of a selected pixel."""
    size = mask.shape[0]
    padded = np.pad(mask, radius, constant_values=255)
    hit = np.zeros(mask.shape, bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            hit |= select(padded[radius + dy:radius + dy + size,
                                 radius + dx:radius + dx + size])
    return hit


def test_stats_match_the_masks(small):
    root, stats = small
    for split, num in (('train', 200), ('val', 40)):
        masks = list(_masks(root, split).values())
        counts = np.stack(
            [np.bincount(m.ravel(), minlength=256) for m in masks])
        s = stats[split]
        assert s['num_images'] == num
        for c, name in enumerate(VOC_CLASSES):
            assert s['image_counts'][name] == int((counts[:, c] > 0).sum())
            assert s['pixel_fractions'][name] == pytest.approx(
                counts[:, c].sum() / counts.sum(), abs=1e-6)
        assert s['void_fraction'] == pytest.approx(
            counts[:, 255].sum() / counts.sum(), abs=1e-6)
        assert sum(s['scene_counts'].values()) == num
        assert sum(s['images_by_num_classes'].values()) == num


def test_co_occurrence_respects_scenes(default):
    root, stats = default
    seen_with_person = set()
    for split in ('train', 'val'):
        for fg in _foreground(root, split):
            others = fg - {15}
            scenes = [s for s, cls in SCENES.items() if others <= set(cls)]
            assert scenes, f'classes {sorted(fg)} mix scenes'
            if 15 in fg and others:
                seen_with_person.update(scenes)
            assert not ({10, 17, 13} & fg and 20 in fg)  # no cow with a tv
    assert seen_with_person == set(SCENES)  # person appears everywhere
    train = stats['train']['image_counts']
    # VOC-like skew: person is by far the most frequent class.
    fg_counts = sorted((n, c) for c, n in train.items() if c != 'background')
    assert fg_counts[-1][1] == 'person'
    assert fg_counts[-1][0] > 2.5 * fg_counts[-2][0]
    assert stats['train']['images_by_num_classes']['1'] > 750


def test_every_class_in_train_and_val(default):
    root, stats = default
    for split in ('train', 'val'):
        present = set()
        for mask in _masks(root, split).values():
            present |= set(np.unique(mask).tolist())
        assert set(range(21)) <= present, split
        assert min(stats[split]['image_counts'].values()) >= 5


@pytest.mark.parametrize('task', ['15-1', '15-5', '19-1'])
def test_sequential_steps_keep_enough_images(default, task):
    root, _ = default
    fgs = _foreground(root, 'train')
    steps = get_task('voc', task).steps
    seen, sizes = set(), []
    for new in steps:
        seen |= set(new)
        sizes.append(sum(bool(fg & set(new)) and fg <= seen for fg in fgs))
    assert min(sizes) >= 30, sizes


def test_deterministic_from_seed(tmp_path):
    kw = dict(num_train=30, num_val=10, image_size=48)
    generate_benchmark(str(tmp_path / 'a'), seed=3, **kw)
    generate_benchmark(str(tmp_path / 'b'), seed=3, **kw)
    generate_benchmark(str(tmp_path / 'c'), seed=4, **kw)
    a, b, c = (_tree_hashes(str(tmp_path / n)) for n in 'abc')
    assert len(a) == 2 * 40 + 3 and a == b
    images = [k for k in a if k.startswith('JPEGImages')]
    assert all(a[k] != c[k] for k in images)


def test_idempotent(tmp_path):
    root = str(tmp_path / 'voc')
    kw = dict(num_train=20, num_val=5, image_size=48)
    first = generate_benchmark(root, **kw)
    before = {
        p: os.stat(osp.join(root, p)).st_mtime_ns
        for p in _tree_hashes(root)
    }
    ino = os.stat(root).st_ino
    assert generate_benchmark(root, **kw) == first
    assert os.stat(root).st_ino == ino
    assert {
        p: os.stat(osp.join(root, p)).st_mtime_ns
        for p in before
    } == before
    assert sorted(os.listdir(tmp_path)) == ['voc']  # no temporary dirs


def test_other_parameters_need_overwrite(tmp_path):
    root = str(tmp_path / 'voc')
    generate_benchmark(root, num_train=20, num_val=5, image_size=48)
    with pytest.raises(FileExistsError, match='overwrite=True'):
        generate_benchmark(root, num_train=25, num_val=5, image_size=48)
    assert len(_ids(root, 'train')) == 20  # untouched
    stats = generate_benchmark(
        root, num_train=25, num_val=5, image_size=48, overwrite=True)
    assert stats['train']['num_images'] == 25
    assert len(_ids(root, 'train')) == 25
    assert len(os.listdir(osp.join(root, 'JPEGImages'))) == 30  # not mixed
    assert sorted(os.listdir(tmp_path)) == ['voc']


def test_incomplete_benchmark_is_detected(tmp_path):
    root = str(tmp_path / 'voc')
    kw = dict(num_train=20, num_val=5, image_size=48)
    generate_benchmark(root, **kw)
    os.remove(osp.join(root, 'JPEGImages', 'train_000003.jpg'))
    with pytest.raises(FileExistsError, match='incomplete'):
        generate_benchmark(root, **kw)
    generate_benchmark(root, overwrite=True, **kw)
    assert osp.isfile(osp.join(root, 'JPEGImages', 'train_000003.jpg'))


def test_refuses_a_directory_that_is_not_a_benchmark(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'notes.txt').write_text('keep me')
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match='not empty'):
            generate_benchmark(
                str(root), num_train=5, num_val=5, overwrite=overwrite)
    assert os.listdir(root) == ['notes.txt']
    empty = tmp_path / 'empty'
    empty.mkdir()
    stats = generate_benchmark(str(empty), num_train=5, num_val=5)
    assert stats['val']['num_images'] == 5


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def fail_on_val(root, split, *args):
        if split == 'val':
            raise KeyboardInterrupt
        calls.append(split)
        return real(root, split, *args)

    real = generate_module.write_split
    monkeypatch.setattr(generate_module, 'write_split', fail_on_val)
    with pytest.raises(KeyboardInterrupt):
        generate_benchmark(str(tmp_path / 'voc'), num_train=5, num_val=5)
    assert calls == ['train']
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(num_train=0), ValueError, 'num_train=0'),
    (dict(num_val=1.5), TypeError, 'num_val'),
    (dict(image_size=16), ValueError, 'image_size'),
    (dict(seed=True), TypeError, 'seed'),
])
def test_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        generate_benchmark(str(tmp_path / 'voc'), **kwargs)
    assert not osp.exists(tmp_path / 'voc')


def test_generator_imports_only_numpy_and_pillow():
    """The generator runs without torch, mmcv or mmseg (the package's own
    ``__init__`` imports them; the benchmark modules never do)."""
    folder = osp.dirname(benchmark_pkg.__file__)
    allowed = set(sys.stdlib_module_names) | {'numpy', 'PIL'}
    files = sorted(f for f in os.listdir(folder) if f.endswith('.py'))
    assert {'generate.py', 'render.py', 'scene.py',
            'voc_tree.py'} <= set(files)
    for name in files:
        with open(osp.join(folder, name)) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [a.name.split('.')[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: a sibling module
                    assert node.level == 1, (name, node.module)
                    continue
                roots = [node.module.split('.')[0]]
            else:
                continue
            assert set(roots) <= allowed, (name, roots)


def test_mmseg_voc_dataset_loads_it(small):
    pytest.importorskip('mmcv')
    from mmseg.datasets import PascalVOCDataset
    root, _ = small
    dataset = PascalVOCDataset(
        data_root=root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations')
        ])
    assert len(dataset) == 40
    item = dataset[0]
    expected = np.asarray(
        Image.open(osp.join(root, 'SegmentationClass', 'val_000000.png')))
    np.testing.assert_array_equal(item['gt_seg_map'], expected)
    assert item['img'].shape == (64, 64, 3)
