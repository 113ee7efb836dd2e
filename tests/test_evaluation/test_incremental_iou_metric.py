# Copyright (c) OpenMMLab. All rights reserved.
"""IncrementalIoUMetric: every number checked against a hand count."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import mmseg_incremental.evaluation.incremental_iou_metric as metric_module
from mmseg_incremental.evaluation import IncrementalIoUMetric

CLASSES = ('background', 'a', 'b', 'c', 'd')
# Step 2 of a toy task: S_0 = {0, 1, 2}, U_1 = {3}, U_2 = {4}.
STEPS = ((0, 1, 2), (3, ), (4, ))


def _sample(label, pred) -> dict:
    """Pack one image as mmseg's val loop hands it to the metric."""
    sample = SegDataSample(
        gt_sem_seg=PixelData(data=torch.tensor([label])),
        pred_sem_seg=PixelData(data=torch.tensor([pred])))
    return sample.to_dict()


# Non-ignored (label, pred) pixels:
#   image 1: (0,0) (0,1) (1,1) (1,1) (2,2) (2,3) (3,3)  + (255, 4) ignored
#   image 2: (0,0) (3,3) (3,0) (4,4) (4,4)              + (255, 1) ignored
# per class     labelled  predicted  correct  union  IoU   recall
#   0 background    3         3         2       4    1/2    2/3
#   1 a             2         3         2       3    2/3    1
#   2 b             2         1         1       2    1/2    1/2
#   3 c             3         3         2       4    1/2    2/3
#   4 d             2         2         2       2    1      1
# Counting the ignored pixels' predictions would make IoU(d) = 2/3 and
# IoU(a) = 1/2, so every number below also checks the 255 exclusion.
IMAGES = [
    ([[0, 0, 1, 1], [2, 2, 3, 255]], [[0, 1, 1, 1], [2, 3, 3, 4]]),
    ([[0, 3, 3], [4, 4, 255]], [[0, 3, 0], [4, 4, 1]]),
]
EXPECTED = {
    'mIoU': round(100 * (1 / 2 + 2 / 3 + 1 / 2 + 1 / 2 + 1) / 5, 2),  # 63.33
    'mPA': round(100 * 9 / 12, 2),  # 75.0
    'mCA': round(100 * (2 / 3 + 1 + 1 / 2 + 2 / 3 + 1) / 5, 2),  # 76.67
    'mIoU_old': round(100 * (1 / 2 + 2 / 3 + 1 / 2) / 3, 2),  # 55.56
    'mIoU_old_nobg': round(100 * (2 / 3 + 1 / 2) / 2, 2),  # 58.33
    'mIoU_step': 100.0,  # U_2 = {d}
    'mIoU_new': round(100 * (1 / 2 + 1) / 2, 2),  # 75.0
    # 2 * (5/9) * (3/4) / (5/9 + 3/4) = 30/47
    'hIoU': round(100 * 30 / 47, 2),  # 63.83
    'IoU.background': 50.0,
    'IoU.a': 66.67,
    'IoU.b': 50.0,
    'IoU.c': 50.0,
    'IoU.d': 100.0,
}


def _evaluate(metric: IncrementalIoUMetric,
              images,
              classes=CLASSES,
              **meta) -> dict:
    metric.dataset_meta = dict(classes=classes, **meta)
    for label, pred in images:
        metric.process({}, [_sample(label, pred)])
    return metric.evaluate(len(images))


def test_hand_computed_step_2_from_dataset_meta():
    with DefaultScope.overwrite_default_scope('mmseg'):
        metric = METRICS.build(dict(type='IncrementalIoUMetric'))
    assert isinstance(metric, IncrementalIoUMetric)
    results = _evaluate(metric, IMAGES, class_steps=STEPS)
    assert list(results) == list(EXPECTED)
    for key, value in EXPECTED.items():
        assert results[key] == value, key
        assert type(results[key]) is float
    assert results['hIoU'] == 63.83
    assert results['mIoU'] == 63.33 and results['mCA'] == 76.67
    assert results['mIoU_old'] == 55.56 and results['mIoU_old_nobg'] == 58.33


def test_matches_mmseg_iou_metric():
    """mIoU / mPA / mCA are mmseg's mIoU / aAcc / mAcc."""
    mmseg_metric = IoUMetric()
    mmseg_metric.dataset_meta = dict(classes=CLASSES)
    for label, pred in IMAGES:
        mmseg_metric.process({}, [_sample(label, pred)])
    ref = mmseg_metric.evaluate(len(IMAGES))
    ours = _evaluate(IncrementalIoUMetric(), IMAGES, class_steps=STEPS)
    assert ours['mIoU'] == pytest.approx(float(ref['mIoU']))
    assert ours['mPA'] == pytest.approx(float(ref['aAcc']))
    assert ours['mCA'] == pytest.approx(float(ref['mAcc']))


def test_class_steps_argument_and_step_1():
    """Without class_steps in the metainfo, the argument decides. At step 1
    (U_1 = {c, d}) mIoU_step and mIoU_new coincide."""
    metric = IncrementalIoUMetric(class_steps=[[0, 1, 2], [3, 4]])
    results = _evaluate(metric, IMAGES)
    assert results['mIoU_step'] == results['mIoU_new'] == 75.0
    assert results['mIoU_old'] == 55.56 and results['hIoU'] == 63.83


def test_step_0_has_no_new_classes():
    """Step 0 (also: neither metainfo nor argument gives class_steps): old =
    step = all classes; mIoU_new and hIoU are omitted."""
    for meta in (dict(class_steps=((0, 1, 2, 3, 4), )), dict()):
        results = _evaluate(IncrementalIoUMetric(), IMAGES, **meta)
        assert 'mIoU_new' not in results and 'hIoU' not in results
        assert results['mIoU'] == results['mIoU_old'] == \
            results['mIoU_step'] == 63.33
        # (2/3 + 1/2 + 1/2 + 1) / 4
        assert results['mIoU_old_nobg'] == 66.67
        assert results['mPA'] == 75.0 and results['mCA'] == 76.67


def test_background_index():
    """mIoU_old_nobg leaves out the class at ``background_index``."""
    metric = IncrementalIoUMetric(background_index=1)
    results = _evaluate(metric, IMAGES, class_steps=STEPS)
    assert results['mIoU_old_nobg'] == 50.0  # (1/2 + 1/2) / 2


def test_nan_classes_are_skipped_in_means():
    # label / pred of 4 classes, one image:
    #   bg: labelled 2, predicted 2, correct 2 -> IoU 1, recall 1
    #   a:  labelled 2, predicted 1, correct 1 -> IoU 1/2, recall 1/2
    #   b:  never labelled, predicted once     -> IoU 0, recall NaN
    #   c:  never labelled nor predicted       -> IoU NaN, recall NaN
    images = [([[0, 0, 1, 1]], [[0, 0, 1, 2]])]
    classes = ('background', 'a', 'b', 'c')
    results = _evaluate(
        IncrementalIoUMetric(),
        images,
        classes=classes,
        class_steps=((0, 1), (2, ), (3, )))
    assert results['IoU.b'] == 0.0
    assert math.isnan(results['IoU.c'])
    assert results['mIoU'] == 50.0  # (1 + 1/2 + 0) / 3, c skipped
    assert results['mCA'] == 75.0  # (1 + 1/2) / 2, b and c skipped
    assert results['mPA'] == 75.0  # 3 / 4
    assert results['mIoU_old'] == 75.0 and results['mIoU_old_nobg'] == 50.0
    assert results['mIoU_new'] == 0.0  # nanmean(0, NaN)
    assert math.isnan(results['mIoU_step'])  # U_2 = {c}, all NaN
    assert results['hIoU'] == 0.0  # 2 * 75 * 0 / (75 + 0)

    # Every new class absent -> mIoU_new NaN -> hIoU NaN.
    results = _evaluate(
        IncrementalIoUMetric(),
        images,
        classes=classes,
        class_steps=((0, 1, 2), (3, )))
    assert math.isnan(results['mIoU_new']) and math.isnan(results['hIoU'])
    assert results['mIoU_old'] == 50.0  # (1 + 1/2 + 0) / 3

    # nan_to_num (mmseg's option) puts the NaN classes into the means.
    results = _evaluate(
        IncrementalIoUMetric(nan_to_num=0),
        images,
        classes=classes,
        class_steps=((0, 1), (2, ), (3, )))
    assert results['IoU.c'] == 0.0 and results['mIoU'] == 37.5
    assert results['mCA'] == 37.5  # (1 + 1/2 + 0 + 0) / 4


def test_hiou_of_zero_old_and_new():
    images = [([[0, 1]], [[1, 0]])]  # nothing right: every IoU 0
    results = _evaluate(
        IncrementalIoUMetric(),
        images,
        classes=('background', 'a'),
        class_steps=((0, ), (1, )))
    assert results['mIoU_old'] == results['mIoU_new'] == 0.0
    assert results['hIoU'] == 0.0


def test_logs_per_class_and_summary_tables(monkeypatch):
    logged = []
    monkeypatch.setattr(metric_module, 'print_log',
                        lambda msg, *args, **kwargs: logged.append(msg))
    _evaluate(IncrementalIoUMetric(), IMAGES, class_steps=STEPS)
    text = '\n'.join(logged)
    assert 'per class results:' in text
    rows = {
        line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:5]]
        for line in text.splitlines() if line.startswith('|')
    }
    assert rows['a'] == ['0', '66.67', '100.0']  # step, IoU, Acc
    assert rows['b'] == ['0', '50.0', '50.0']
    assert rows['c'] == ['1', '50.0', '66.67']
    assert rows['d'] == ['2', '100.0', '100.0']
    assert 'incremental summary (step 2):' in text
    assert 'hIoU' in text and '63.83' in text


@pytest.mark.parametrize('meta_steps,arg_steps,match', [
    (((0, 1), (2, 3)), None, r'split the 5 output indices'),
    (((0, 1, 2), (3, 3, 4)), None, r'split the 5 output indices'),
    (((0, 1, 2), (), (3, 4)), None, r'non-empty steps'),
    (None, ((1, 2), (0, 3, 4)), r'background_index 0 is not a step-0'),
    (STEPS, ((0, 1, 2), (3, 4)), r'contradicts the dataset'),
    ('abc', None, r'sequence of sequences'),
    (((0, 1, 2.0), (3, 4)), None, r'sequence of sequences'),
    (5, None, r'sequence of sequences'),
])
def test_bad_class_steps_raise(meta_steps, arg_steps, match):
    metric = IncrementalIoUMetric(class_steps=arg_steps)
    meta = {} if meta_steps is None else dict(class_steps=meta_steps)
    with pytest.raises(ValueError, match=match):
        _evaluate(metric, IMAGES, **meta)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='iou_metrics'):
        IncrementalIoUMetric(iou_metrics=['mDice'])
    metric = IncrementalIoUMetric()
    metric.dataset_meta = dict(classes=CLASSES, class_steps=STEPS)
    with pytest.raises(ValueError, match='evaluation split is empty'):
        metric.compute_metrics([])
