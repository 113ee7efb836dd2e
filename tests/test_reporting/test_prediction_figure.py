"""The Fig. 3-style picture of compare_runs (image | ground truth | each
run's final prediction), from toy checkpoints that predict one class."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from test_reporting.utils import entry, summary

from mmseg_incremental.reporting import compare_runs
from mmseg_incremental.reporting.prediction_figure import (collect_panels,
                                                           colorize, seen_ids)

TOY_STEP_CONFIG = '''
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='{segmentor}',{extra}
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='ResNet', depth=18, base_channels=8, stem_channels=8,
        num_stages=4, out_indices=(3, ), strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1), norm_cfg=norm_cfg),
    decode_head=dict(
        type='FCNHead', in_channels=64, in_index=0, channels=8, num_convs=1,
        concat_input=False, dropout_ratio=0.0, num_classes=3,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
{test_pipeline}
test_dataloader = dict(
    batch_size=1, num_workers=0,
    dataset=dict(
        type='IncrementalVOCDataset', task=dict(steps=[[0, 15], [20]]),
        step=1, eval_protocol='seen_only', data_root={root!r},
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt', test_mode=True,
        pipeline=pipeline))
'''
# Raw VOC masks of the 3 val images (ids 0, 15 person, 20 tvmonitor, 255).
TOY_MASKS = {
    'a': ((0, 15), None),  # left half background, right half person
    'b': ((0, 20), None),
    'c': ((15, 20), 255),  # person | tvmonitor, a void column between
}


def _toy_voc(root, size=(40, 32)):
    w, h = size
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (root / sub).mkdir(parents=True)
    masks = {}
    for name, ((left, right), border) in TOY_MASKS.items():
        mask = np.full((h, w), left, np.uint8)
        mask[:, w // 2:] = right
        if border is not None:
            mask[:, w // 2] = border
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[..., 0] = mask * 10
        Image.fromarray(rgb).save(root / 'JPEGImages' / f'{name}.jpg')
        png = Image.fromarray(mask, mode='P')
        png.putpalette([v for c in range(256) for v in (c, c, c)])
        png.save(root / 'SegmentationClass' / f'{name}.png')
        masks[name] = mask
    (root / 'ImageSets/Segmentation/val.txt').write_text('a\nb\nc\n')
    return masks


def _toy_run(tmp_path, name, winner, distill):
    """A finished 2-step run whose final model predicts output index
    ``winner`` everywhere."""
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    d = tmp_path / name
    (d / 'step_1').mkdir(parents=True)
    extra = ("\n    teacher_checkpoint='/nonexistent/M0.pth',"
             '\n    distill_output=None, distill_feature=None,'
             if distill else '')
    text = TOY_STEP_CONFIG.format(
        segmentor='DistillEncoderDecoder' if distill else 'EncoderDecoder',
        extra=extra,
        root=str(tmp_path / 'voc'),
        test_pipeline='' if distill else 'test_pipeline = pipeline')
    (d / 'step_1' / 'step_config.py').write_text(text)
    init_default_scope('mmseg')
    cfg = {}
    exec(text, cfg)
    model_cfg = dict(cfg['model'], type='EncoderDecoder')
    for key in ('teacher_checkpoint', 'distill_output', 'distill_feature'):
        model_cfg.pop(key, None)
    model = MODELS.build(model_cfg)
    with torch.no_grad():
        model.decode_head.conv_seg.weight.zero_()
        model.decode_head.conv_seg.bias.copy_(
            torch.tensor([10.0 * (i == winner) for i in range(3)]))
    ckpt = d / 'step_1' / 'iter_1.pth'
    meta = dict(
        dataset_meta=dict(
            classes=('background', 'person', 'tvmonitor'),
            palette=[[0, 0, 0], [192, 128, 128], [0, 64, 128]]))
    torch.save(dict(meta=meta, state_dict=model.state_dict()), ckpt)
    (d / 'step_1' / 'step_done.json').write_text(
        json.dumps(dict(step=1, checkpoint=str(ckpt), metrics={})))
    s = summary(
        'custom', [[0, 15], [20]], 'FT',
        [entry(0, [0, 15], [0, 15], 50.0),
         entry(1, [20], [0, 15, 20], 40.0)])
    (d / 'summary.json').write_text(json.dumps(s))
    return str(d)


def test_compare_images(tmp_path):
    pytest.importorskip('mmcv.ops')

    masks = _toy_voc(tmp_path / 'voc')
    dirs = [
        _toy_run(tmp_path, 'to_tv', 2, distill=False),
        _toy_run(tmp_path, 'to_person', 1, distill=True)
    ]
    voc_palette = {
        0: (0, 0, 0),
        15: (192, 128, 128),
        20: (0, 64, 128),
        255: (224, 224, 192)
    }

    # colorize: output index i -> palette of class id ids[i]; 255 -> void.
    label = np.array([[0, 1, 2, 255]], np.uint8)
    palette = [[0, 0, 0]] * 21
    palette[15], palette[20] = [192, 128, 128], [0, 64, 128]
    assert colorize(label, [0, 15, 20], palette).tolist() == [[
        list(voc_palette[c]) for c in (0, 15, 20, 255)
    ]]

    assert seen_ids(dirs[0], 1) == [0, 15, 20]
    assert seen_ids(dirs[0], 7) is None

    panels = collect_panels(dirs, num_images=2)
    # 2 of 3 images, evenly spread: the first and the last.
    assert [osp.basename(p) for p in panels.img_paths] == ['a.jpg', 'c.jpg']
    for gt, name in zip(panels.gts, 'ac'):
        expected = np.array([voc_palette[c] for c in masks[name].ravel()],
                            np.uint8).reshape(gt.shape)
        assert (gt == expected).all()
    to_tv, to_person = panels.columns
    assert all((p == voc_palette[20]).all() for p in to_tv)
    assert all((p == voc_palette[15]).all() for p in to_person)
    assert to_tv[0].shape == (32, 40, 3)  # full resolution

    out = tmp_path / 'cmp'
    compare_runs(dirs, out_dir=str(out), images=2)
    with Image.open(out / 'comparison.png') as img:
        assert img.format == 'PNG'
        assert img.size[0] >= 400 and img.size[1] >= 200
        pixels = np.asarray(img.convert('RGB')).reshape(-1, 3)
    for colour in (voc_palette[15], voc_palette[20]):
        assert (pixels == colour).all(axis=1).sum() > 1000
