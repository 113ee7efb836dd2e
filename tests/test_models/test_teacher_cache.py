"""The teacher-output cache: same L'_D as the live teacher, no teacher
forward once an image is cached (also after a resume), a different crop
detected, and the fixed per-image augmentation it relies on."""
import os
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

import mmseg_incremental  # noqa: F401
from mmseg.registry import DATASETS, MODELS
from mmseg_incremental.models.utils import teacher_cache as cache_module
from mmseg_incremental.planning import build_step_config, deploy_config
from test_experiment.utils import CFG_DIR
from test_models.utils import distill_cfg, make_batch, make_teacher

C_OLD, C_NEW = 3, 5
LD = dict(pixel_mask='old')


@pytest.fixture
def teacher(tmp_path):
    path = str(tmp_path / 'step_0.pth')
    make_teacher(path, C_OLD)
    return path


def _build(path, num_classes=C_NEW, **kwargs):
    kwargs.setdefault('distill_output', LD)
    torch.manual_seed(0)  # the same new classifier rows in every model
    return MODELS.build(distill_cfg(path, num_classes, **kwargs)).train()


def _batch(seed=1, names=('a.jpg', 'b.jpg'), num_classes=C_NEW):
    batch = make_batch(num_classes, batch_size=len(names), seed=seed)
    for sample, name in zip(batch['data_samples'], names):
        sample.set_metainfo(dict(img_path=name))
    return batch


def _ld_and_teacher_calls(model, batch):
    """L'_D of one loss() and how often the teacher's head ran."""
    calls = []
    head = model.teacher.decode_head
    original = head.forward
    with mock.patch.object(
            head,
            'forward',
            side_effect=lambda x: calls.append(x[0].shape[0]) or original(x)):
        data = model.data_preprocessor(batch, training=True)
        losses = model.loss(data['inputs'], data['data_samples'])
    return losses['distill.loss_distill_out'], calls


def test_cached_and_live_teacher_give_the_same_ld(teacher):
    live = _build(teacher)
    cached = _build(teacher, teacher_cache=dict(dir=None))
    batch = _batch()
    expected, calls = _ld_and_teacher_calls(live, batch)
    assert calls == [2]
    first, calls = _ld_and_teacher_calls(cached, batch)  # fills the cache
    assert calls == [2] and len(cached.teacher_cache) == 2
    again, calls = _ld_and_teacher_calls(cached, batch)  # replays it
    assert calls == []
    # Entries are fp16 logits; the first visit already uses them rounded.
    assert again.item() == first.item()
    assert again.item() == pytest.approx(expected.item(), rel=1e-3)
    assert cached.teacher_cache.hits == 2
    # A batch mixing a cached and a new image runs the teacher on the new
    # one only.
    mixed = _batch(names=('a.jpg', 'c.jpg'))
    mixed['inputs'][0] = batch['inputs'][0]
    _, calls = _ld_and_teacher_calls(cached, mixed)
    assert calls == [1]


def test_ef_cache_saves_the_teacher_head(teacher):
    model = _build(teacher, freeze_encoder=True, teacher_cache=dict(dir=None))
    batch = _batch()
    assert _ld_and_teacher_calls(model, batch)[1] == [2]
    assert _ld_and_teacher_calls(model, batch)[1] == []


def test_resumed_step_reuses_the_files(teacher, tmp_path):
    folder = str(tmp_path / 'step_1' / 'teacher_cache')
    model = _build(teacher, teacher_cache=dict(dir=folder))
    batch = _batch()
    first, calls = _ld_and_teacher_calls(model, batch)
    assert calls == [2]
    assert sorted(
        os.listdir(folder)) == ['rank0.bin', 'rank0.json', 'rank0.jsonl']
    model.teacher_cache.close()
    del model
    # A kill while an index line was written leaves a torn last line.
    with open(os.path.join(folder, 'rank0.jsonl'), 'a') as f:
        f.write('[2, 0.5, ')
    resumed = _build(teacher, teacher_cache=dict(dir=folder))
    again, calls = _ld_and_teacher_calls(resumed, batch)
    assert calls == [] and len(resumed.teacher_cache) == 2
    assert again.item() == first.item()
    # A new image is added after the kept entries.
    _, calls = _ld_and_teacher_calls(resumed, _batch(seed=3, names=('c', )))
    assert calls == [1] and len(resumed.teacher_cache) == 3
    # Another teacher never reads these entries.
    other = str(tmp_path / 'other.pth')
    make_teacher(other, C_OLD, seed=7)
    fresh = _build(other, teacher_cache=dict(dir=folder))
    assert _ld_and_teacher_calls(fresh, batch)[1] == [2]


def test_a_different_crop_is_detected(teacher):
    model = _build(teacher, teacher_cache=dict(dir=None))
    live = _build(teacher)
    batch = _batch()
    _ld_and_teacher_calls(model, batch)
    flipped = _batch()
    flipped['inputs'] = [x.flip(-1) for x in flipped['inputs']]
    with mock.patch.object(cache_module, 'print_log') as log:
        value, calls = _ld_and_teacher_calls(model, flipped)
        _ld_and_teacher_calls(model, flipped)
    assert calls == [2]  # live, not the stale entries
    warnings = [c for c in log.call_args_list if 'differs' in c.args[0]]
    assert len(warnings) == 1  # once
    expected, _ = _ld_and_teacher_calls(live, flipped)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_cache_is_bounded(teacher):
    # One entry is 3 classes x 8 x 8 logits x 2 bytes = 384 bytes.
    model = _build(teacher, teacher_cache=dict(dir=None, max_size_mb=5e-4))
    batch = _batch(names=('a', 'b'))
    assert _ld_and_teacher_calls(model, batch)[1] == [2]
    assert len(model.teacher_cache) == 1
    assert _ld_and_teacher_calls(model, batch)[1] == [1]


@pytest.mark.parametrize('kwargs, match', [
    (dict(distill_output=None), r'a term that reads them .* need \[\]'),
    (dict(distill_feature=dict()), r"need \['feats', 'logits'\]"),
    (dict(teacher_cache=dict(size=1)), "'dir' and 'max_size_mb'"),
])
def test_bad_cache_arguments(teacher, kwargs, match):
    kwargs = dict(dict(teacher_cache=dict()), **kwargs)
    with pytest.raises(ValueError, match=match):
        _build(teacher, **kwargs)


def test_second_epoch_does_not_run_the_teacher(embedded_voc, tmp_path):
    """Through the real dataset: with ``augment_seed`` every image comes
    back with the same crop and flip, so epoch 2 replays every logit."""
    path = str(tmp_path / 'm0.pth')
    make_teacher(path, 16)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='RandomRescale', ratio_range=(0.5, 1.5)),
        dict(type='RandomCrop', crop_size=(16, 16)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs')
    ]

    def dataset(**kwargs):
        return DATASETS.build(
            dict(
                type='IncrementalVOCDataset',
                data_root=embedded_voc,
                data_prefix=dict(
                    img_path='JPEGImages', seg_map_path='SegmentationClass'),
                ann_file='ImageSets/Segmentation/train.txt',
                task='15-1',
                step=1,
                pipeline=pipeline,
                **kwargs))

    seeded = dataset(augment_seed=0)
    assert 4 <= len(seeded) <= 40
    twice = [seeded[0]['inputs'], seeded[0]['inputs']]
    assert torch.equal(*twice)
    state = torch.random.get_rng_state()
    seeded[1]  # noqa: B018  (leaves the global generators alone)
    assert torch.equal(state, torch.random.get_rng_state())
    plain = dataset()
    assert not all(
        torch.equal(plain[0]['inputs'], plain[0]['inputs']) for _ in range(5))
    model = _build(path, 17, teacher_cache=dict(dir=None))
    calls = []
    for epoch in range(2):
        for start in range(0, len(seeded), 4):
            batch = pseudo_collate(
                [seeded[i] for i in range(start, min(start + 4, len(seeded)))])
            calls.append(_ld_and_teacher_calls(model, batch)[1])
        if epoch == 0:
            assert sum(sum(c) for c in calls) == len(seeded)
            calls = []
    assert calls and all(c == [] for c in calls)
    assert model.teacher_cache.hits == len(seeded)


def test_plan_wires_the_cache(tmp_path):
    cfg = Config.fromfile(os.path.join(CFG_DIR, 'bench_15-1_ld.py'))
    cfg.merge_from_dict({
        'incremental.teacher_cache': dict(max_size_mb=64),
        'randomness': dict(seed=5)
    })
    work_dir = str(tmp_path / 'step_1')
    step = build_step_config(cfg, 1, work_dir, teacher_checkpoint='m0.pth')
    assert step.model.teacher_cache == dict(
        max_size_mb=64, dir=os.path.join(work_dir, 'teacher_cache'))
    assert step.train_dataloader.dataset.augment_seed == 5
    assert 'augment_seed' not in step.val_dataloader.dataset
    assert 'teacher_cache' not in deploy_config(step).model
    step0 = build_step_config(cfg, 0, str(tmp_path / 'step_0'))
    assert 'augment_seed' not in step0.train_dataloader.dataset
    # dir=None keeps it in memory.
    cfg.merge_from_dict({'incremental.teacher_cache.dir': None})
    step = build_step_config(cfg, 1, work_dir, teacher_checkpoint='m0.pth')
    assert step.model.teacher_cache.dir is None
