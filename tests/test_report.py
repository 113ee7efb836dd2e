"""Experiment reports (report.md, metrics.csv, plots) and run comparisons,
from hand-made summary.json dicts with known numbers."""
import csv
import json
import os.path as osp
import runpy
import sys

import pytest
from PIL import Image

from mmseg_incremental.experiment.compare import compare_runs
from mmseg_incremental.experiment.paper_results import (MIB_LABEL, PAPER_LABEL,
                                                        mib_rerun,
                                                        paper_result,
                                                        paper_step_miou)
from mmseg_incremental.experiment.report import write_report

VOC = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
       'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
       'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
       'tvmonitor')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def entry(step, new, seen, miou, iou=None, names=VOC, **metrics):
    """One steps[i] of summary.json; IoU of class c defaults to c + 50."""
    iou = iou or {}
    m = dict(
        mIoU=miou,
        mPA=90.0 + step,
        mCA=80.0 + step,
        mIoU_old=None,
        mIoU_new=None,
        mIoU_old_nobg=None,
        mIoU_step=None,
        hIoU=None)
    m.update(metrics)
    m['IoU'] = {names[c]: iou.get(c, c + 50.0) for c in seen}
    return dict(
        step=step, new_classes=list(new), seen_classes=list(seen), metrics=m)


def summary(task,
            task_steps,
            method,
            steps,
            dataset='voc',
            setting='sequential'):
    return dict(
        task=task,
        dataset=dataset,
        task_steps=task_steps,
        setting=setting,
        eval_protocol='seen_only',
        method=method,
        config=f'configs/il/{task}.py',
        steps=steps)


def voc_19_1(method="L'_D", new_miou=30.0, iou20=30.0):
    return summary('19-1', [list(range(20)), [20]], method, [
        entry(
            0,
            range(20),
            range(20),
            60.0,
            mIoU_old=60.0,
            mIoU_old_nobg=59.0,
            mIoU_step=60.0),
        entry(
            1, [20],
            range(21),
            58.0,
            iou={20: iou20},
            mIoU_old=59.5,
            mIoU_new=new_miou,
            mIoU_old_nobg=58.5,
            mIoU_step=new_miou,
            hIoU=39.9)
    ])


def voc_joint():
    # IoU of class c: c (0..19), tvmonitor 41; bottle (5) undefined.
    iou = {c: float(c) for c in range(20)}
    iou.update({5: None, 20: 41.0})
    return summary('joint', [list(range(21))], 'joint', [
        entry(
            0,
            range(21),
            range(21),
            12.0,
            iou=iou,
            mIoU_old=12.0,
            mIoU_old_nobg=12.5,
            mIoU_step=12.0)
    ])


def md_tables(text):
    """{section heading: [rows as {column: cell}]} of a Markdown file."""
    tables, heading, lines = {}, None, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('#'):
            heading = line.lstrip('# ').strip()
        elif line.startswith('|') and not lines[i - 1].startswith('|'):
            header = [c.strip() for c in line.strip('|').split('|')]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith('|'):
                    break
                cells = [c.strip() for c in row.strip('|').split('|')]
                assert len(cells) == len(header), row
                rows.append(dict(zip(header, cells)))
            tables.setdefault(heading, rows)
    return tables


def table(tables, prefix):
    (rows, ) = [v for k, v in tables.items() if k.startswith(prefix)]
    return rows


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def check_png(path, min_size=(300, 200)):
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == 'PNG'
        assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1]


def test_paper_numbers():
    assert tuple(paper_result('voc', '19-1', "L'_D")) == (70.0, 35.3, 68.4)
    assert tuple(paper_result('voc', '15-5s', "EF+L'_D")) == (70.5, 44.2, 64.3)
    assert tuple(paper_result('voc', '15-5', 'M0')) == (75.5, None, 75.5)
    assert paper_result('voc', '15-5', 'EF') is None  # not in Table 2
    assert paper_result('ade', '100-50', 'FT') is None
    assert paper_step_miou('voc', '15-1',
                           'FT') == (75.5, 71.2, 53.8, 57.7, 39.3, 44.2)
    assert paper_step_miou('voc', '19-1', "L''_D") == (73.4, 71.6)
    assert paper_step_miou('voc', '19-1', 'M0') == (73.4, )
    assert paper_step_miou('voc', '19-1', 'joint') is None
    assert tuple(mib_rerun('voc', '19-1', "L'_D+L''_D",
                           'disjoint')) == (69.1, 16.4, 66.4)
    assert mib_rerun('voc', '19-1', "L'_D+L''_D", 'sequential') is None


def test_report_19_1_with_paper(tmp_path):
    write_report(str(tmp_path), voc_19_1())
    text = (tmp_path / 'report.md').read_text()
    tables = md_tables(text)

    # Tables 1-3 shape: old classes, old, new classes, new, all, mPA, mCA.
    per_class = table(tables, 'Per-class IoU after M1(20)')
    header = list(per_class[0])
    assert header == [''] + list(
        VOC[:20]) + ['old', 'tvmonitor', 'new', 'all', 'mPA', 'mCA']
    ours, paper = per_class
    assert ours[''] == 'ours' and paper[''] == PAPER_LABEL
    assert ours['aeroplane'] == '51.0' and ours['tvmonitor'] == '30.0'
    assert (ours['old'], ours['new'], ours['all']) == ('59.5', '30.0', '58.0')
    assert (ours['mPA'], ours['mCA']) == ('91.0', '81.0')
    assert (paper['old'], paper['new'], paper['all']) == ('70.0', '35.3',
                                                          '68.4')
    assert paper['tvmonitor'] == '' and paper['mPA'] == ''

    steps = table(tables, 'mIoU, mPA and mCA after each step')
    assert [r['model'] for r in steps] == ['M0(0-19)', 'M1(20)']
    assert steps[0]['mIoU'] == '60.0' and steps[1]['mPA'] == '91.0'
    assert [r[f'{PAPER_LABEL} mIoU'] for r in steps] == ['73.4', '68.4']

    old_new = table(tables, 'old / new / all')
    assert old_new[0]['new'] == '–' and old_new[0]['hIoU'] == '–'
    assert old_new[1]['old w/o bg'] == '58.5'
    assert old_new[1]['this step (U_k)'] == '30.0'
    assert old_new[2]['model'] == f'{PAPER_LABEL}, M1(20)'
    # hIoU of the paper's row: 2 * 70.0 * 35.3 / 105.3 = 46.93
    assert old_new[2]['hIoU'] == '46.9'
    assert MIB_LABEL not in text  # sequential run

    rows = read_csv(tmp_path / 'metrics.csv')
    assert [r['step'] for r in rows] == ['0', '1']
    assert rows[0]['mIoU_new'] == '' and rows[1]['mIoU_new'] == '30.0'
    assert rows[0]['IoU.tvmonitor'] == '' and rows[1]['IoU.tvmonitor'] == \
        '30.0'
    assert rows[1]['IoU.person'] == '65.0' and rows[1]['new_classes'] == '20'
    for png in ('miou_per_step.png', 'iou_per_class.png'):
        check_png(tmp_path / png)


def test_report_single_step_and_nulls(tmp_path):
    write_report(str(tmp_path), voc_joint())
    tables = md_tables((tmp_path / 'report.md').read_text())
    (ours, ) = table(tables, 'Per-class IoU after M0(0-20)')
    assert 'new' not in ours and ours['tvmonitor'] == '41.0'
    assert ours['bottle'] == '–' and ours['old'] == '12.0'
    (row, ) = table(tables, 'old / new / all')
    assert row['new'] == '–' and row['hIoU'] == '–' and row['all'] == '12.0'

    # Scored as 19-1: old = mean(0..19 without bottle) = 185 / 19 = 9.74,
    # new = 41, hIoU = 2 * 9.74 * 41 / 50.74 = 15.74; all = 226 / 20 = 11.3.
    # As 15-5: old = mean(0..15 w/o 5) = 115 / 15 = 7.67, new =
    # mean(16..19, 41) = 111 / 5 = 22.2.
    split = table(tables, 'The joint model split')
    assert [(r['split'], r['source'])
            for r in split] == [('19-1', 'ours'), ('19-1', PAPER_LABEL),
                                ('15-5 / 15-1', 'ours'),
                                ('15-5 / 15-1', PAPER_LABEL)]
    assert [split[0][k] for k in ('old', 'new', 'all', 'hIoU')
            ] == ['9.7', '41.0', '11.3', '15.7']
    assert [split[1][k]
            for k in ('old', 'new', 'all')] == ['73.7', '70.5', '73.6']
    assert [split[2][k] for k in ('old', 'new')] == ['7.7', '22.2']

    (row, ) = read_csv(tmp_path / 'metrics.csv')
    assert row['IoU.bottle'] == '' and row['hIoU'] == ''
    assert row['mIoU'] == '12.0'
    check_png(tmp_path / 'miou_per_step.png')
    check_png(tmp_path / 'iou_per_class.png')


def test_report_partial_15_1_and_other_dataset(tmp_path):
    s = summary(
        '15-1', [list(range(16))] + [[c] for c in range(16, 21)], 'FT', [
            entry(0, range(16), range(16), 70.0, mIoU_old=70.0),
            entry(1, [16], range(17), 50.0, mIoU_old=51.0, mIoU_new=None)
        ])
    write_report(str(tmp_path / 'voc'), s)
    text = (tmp_path / 'voc' / 'report.md').read_text()
    tables = md_tables(text)
    # Per-step paper mIoU (Table 4), but no last-step paper row: the run
    # stopped at step 1 of 5.
    steps = table(tables, 'mIoU, mPA and mCA')
    assert [r[f'{PAPER_LABEL} mIoU'] for r in steps] == ['75.5', '71.2']
    assert len(table(tables, 'old / new / all')) == 2
    assert len(table(tables, 'Per-class IoU')) == 1
    assert 'steps done    | 2 of 6' in text

    ade = dict(s, dataset='ade', task='custom')
    write_report(str(tmp_path / 'ade'), ade)
    assert PAPER_LABEL not in (tmp_path / 'ade' / 'report.md').read_text()


def test_report_bad_summary(tmp_path):
    with pytest.raises(ValueError, match='non-empty "steps" list'):
        write_report(str(tmp_path), dict(task='19-1', steps=[]))
    with pytest.raises(ValueError, match=r'steps\[0\] needs "step"'):
        write_report(str(tmp_path), dict(steps=[dict(metrics={})]))


def write_run(root, name, s):
    d = root / name
    d.mkdir()
    (d / 'summary.json').write_text(json.dumps(s))
    return str(d)


def test_compare_rows_sorted_aligned(tmp_path, capsys):
    runs = tmp_path / 'runs'
    runs.mkdir()
    dirs = [
        write_run(runs, 'ef_ld', voc_19_1("EF+L'_D", 50.0, 50.0)),
        write_run(runs, 'ft', voc_19_1('FT', 20.0, 20.0)),
        write_run(runs, 'joint', voc_joint()),
        write_run(runs, 'ld', voc_19_1("L'_D", 35.0, 35.0)),
    ]
    out = tmp_path / 'cmp'
    sys_argv = sys.argv
    sys.argv = ['compare_runs.py', *dirs, '--out', str(out)]
    try:
        runpy.run_path(
            osp.join(ROOT, 'tools', 'compare_runs.py'), run_name='__main__')
    finally:
        sys.argv = sys_argv
    printed = capsys.readouterr().out
    text = (out / 'comparison.md').read_text()
    assert printed.strip() == text.strip()
    for line_block in text.split('\n\n'):
        lines = [ln for ln in line_block.splitlines() if ln.startswith('|')]
        assert len({len(ln) for ln in lines}) <= 1, line_block  # aligned

    tables = md_tables(text)
    last = table(tables, 'voc 19-1: mIoU after the last step')
    assert [(r['method'], r['source'], r['run'])
            for r in last] == [('FT', 'ours', 'ft'), ('FT', PAPER_LABEL, ''),
                               ("L'_D", 'ours', 'ld'),
                               ("L'_D", PAPER_LABEL, ''),
                               ("EF+L'_D", 'ours', 'ef_ld'),
                               ("EF+L'_D", PAPER_LABEL, ''),
                               ('M0', 'ours', 'ef_ld, ft, ld'),
                               ('M0', PAPER_LABEL, ''),
                               ('joint', 'ours', 'joint'),
                               ('joint', PAPER_LABEL, '')]
    assert [last[3][k]
            for k in ('old', 'new', 'all')] == ['70.0', '35.3', '68.4']
    assert [last[0][k] for k in ('old', 'new', 'all', 'steps')
            ] == ['59.5', '20.0', '58.0', '2/2']
    assert (last[6]['all'], last[6]['new'], last[6]['steps']) == ('60.0', '–',
                                                                  '1/2')
    # The joint run scored with the 19-1 split (see the test above).
    assert [last[8][k]
            for k in ('old', 'new', 'hIoU')] == ['9.7', '41.0', '15.7']

    steps = table(tables, 'voc 19-1: mIoU after each step')
    assert list(steps[0]) == ['method', 'source', 'run', 'M0(0-19)', 'M1(20)']
    assert [(r['method'], r['source'])
            for r in steps] == [('FT', 'ours'), ('FT', PAPER_LABEL),
                                ("L'_D", 'ours'), ("L'_D", PAPER_LABEL),
                                ("EF+L'_D", 'ours'), ("EF+L'_D", PAPER_LABEL)]
    assert (steps[5]['M0(0-19)'], steps[5]['M1(20)']) == ('73.4', '71.5')
    assert 'span several tasks' not in text

    rows = read_csv(out / 'comparison.csv')
    assert len(rows) == 10
    assert rows[2]['method'] == "L'_D" and rows[2]['new'] == '35.0'
    assert rows[1]['hIoU'].startswith('30.95')  # 2*67.3*20.1/87.4
    per_step = read_csv(out / 'comparison_steps.csv')
    assert [(r['run'], r['step'], r['mIoU'])
            for r in per_step[:2]] == [('ft', '0', '60.0'),
                                       ('ft', '1', '58.0')]


def test_compare_mixed_tasks_and_mib(tmp_path):
    runs = tmp_path / 'runs'
    runs.mkdir()
    mib = voc_19_1("L'_D+L''_D")
    mib['setting'] = 'disjoint'
    s15 = summary('15-5', [
        list(range(16)), list(range(16, 21))
    ], 'FT', [
        entry(0, range(16), range(16), 70.0, mIoU_old=70.0),
        entry(1, range(16, 21), range(21), 40.0, mIoU_old=45.0, mIoU_new=25.0)
    ])
    text = compare_runs(
        [write_run(runs, 'mib', mib),
         write_run(runs, 'ft15', s15)])
    assert 'span several tasks: voc 19-1, voc 15-5' in text
    tables = md_tables(text)
    rows = table(tables, 'voc 19-1: mIoU after the last step')
    assert [r['source'] for r in rows
            ] == ['ours', PAPER_LABEL, MIB_LABEL, 'ours', PAPER_LABEL]
    assert [rows[2][k] for k in ('old', 'old w/o bg', 'new', 'all')
            ] == ['–', '69.1', '16.4', '66.4']
    rows = table(tables, 'voc 15-5: mIoU after the last step')
    assert [rows[1][k]
            for k in ('old', 'new', 'all')] == ['60.6', '38.7', '55.4']


def test_compare_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='summary.json'):
        compare_runs([str(tmp_path)])
    with pytest.raises(ValueError, match='--out DIR'):
        compare_runs([str(tmp_path)], images=2)


# --- --images: the Fig. 3-style picture from toy checkpoints ---------------

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
    import numpy as np
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
    import numpy as np
    pytest.importorskip('mmcv.ops')
    from mmseg_incremental.experiment.prediction_figure import (collect_panels,
                                                                colorize)

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
    check_png(out / 'comparison.png', min_size=(400, 200))
    with Image.open(out / 'comparison.png') as img:
        pixels = np.asarray(img.convert('RGB')).reshape(-1, 3)
    for colour in (voc_palette[15], voc_palette[20]):
        assert (pixels == colour).all(axis=1).sum() > 1000


def test_report_many_classes_as_rows_and_no_iou(tmp_path):
    # ADE 100-50-like: more classes than columns fit, so one row per class.
    names = [f'c{i}' for i in range(40)]
    s = summary(
        'custom', [list(range(30)), list(range(30, 40))],
        'FT', [
            entry(0, range(30), range(30), 20.0, names=names),
            entry(
                1,
                range(30, 40),
                range(40),
                15.0,
                names=names,
                iou={c: float(c)
                     for c in range(40)},
                mIoU_old=18.0,
                mIoU_new=6.0)
        ],
        dataset='ade')
    write_report(str(tmp_path / 'ade'), s)
    tables = md_tables((tmp_path / 'ade' / 'report.md').read_text())
    rows = [v for k, v in tables.items() if k.startswith('Per-class')][0]
    assert len(rows) == 40
    assert rows[35] == {
        'class': 'c35',
        'id': '35',
        'learnt at step': '1',
        'IoU': '35.0'
    }
    check_png(tmp_path / 'ade' / 'iou_per_class.png')

    del s['steps'][1]['metrics']['IoU']
    write_report(str(tmp_path / 'no_iou'), s)
    text = (tmp_path / 'no_iou' / 'report.md').read_text()
    assert 'No per-class IoU recorded for this step.' in text
    check_png(tmp_path / 'no_iou' / 'iou_per_class.png')
