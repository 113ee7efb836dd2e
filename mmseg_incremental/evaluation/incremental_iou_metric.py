# Copyright (c) OpenMMLab. All rights reserved.
"""IoU metrics split by the step each class was learnt in (paper §4)."""
import operator
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

ClassSteps = Tuple[Tuple[int, ...], ...]


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN (no warning) if there are none."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float('nan')


def _harmonic_mean(a: float, b: float) -> float:
    """hIoU = 2ab / (a + b); 0 when both are 0, NaN when either is NaN."""
    if np.isnan(a) or np.isnan(b):
        return float('nan')
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def _percent(value: float) -> float:
    """A ratio in [0, 1] as a percentage rounded like mmseg (2 decimals)."""
    return round(float(value) * 100, 2)


def check_class_steps(class_steps: Sequence[Sequence[int]],
                      num_classes: int,
                      background_index: Optional[int] = None) -> ClassSteps:
    """Validate ``class_steps`` against the number of model outputs.

    Args:
        class_steps (Sequence[Sequence[int]]): Output indices learnt at each
            step 0..k.
        num_classes (int): |S_k|, the length of ``dataset_meta['classes']``.
        background_index (int, optional): Must belong to step 0 if given.

    Returns:
        tuple[tuple[int]]: ``class_steps`` as tuples.
    """
    try:
        steps = tuple(
            tuple(operator.index(i) for i in step) for step in class_steps)
    except TypeError as err:
        raise ValueError(
            'class_steps must be a sequence of sequences of output indices, '
            f'e.g. ((0, 1, 2), (3,)); got {class_steps!r}.') from err
    flat = sorted(i for step in steps for i in step)
    if not steps or any(len(step) == 0 for step in steps) or \
            flat != list(range(num_classes)):
        raise ValueError(
            f'class_steps {class_steps!r} must split the {num_classes} '
            f'output indices 0..{num_classes - 1} (one per entry of '
            "dataset_meta['classes']) into non-empty steps, each index in "
            'exactly one step; fix the class_steps of the dataset metainfo '
            'or of the metric.')
    if background_index is not None and background_index not in steps[0]:
        raise ValueError(
            f'background_index {background_index} is not a step-0 class '
            f'(step 0 = {steps[0]}); set background_index to the output '
            'index of the background.')
    return steps


@METRICS.register_module()
class IncrementalIoUMetric(IoUMetric):
    """mmseg's :class:`IoUMetric` with the class-incremental summaries.

    After step k the model knows S_k = S_0 ∪ U_1 ∪ ... ∪ U_k. Per image,
    :meth:`process` (inherited) accumulates the areas of intersection,
    union, prediction and label of every class; :meth:`compute_metrics`
    returns flat percentages (rounded to 2 decimals, as mmseg does):

    - ``mIoU``: mean IoU over S_k.
    - ``mPA``: pixel accuracy, correct / labelled pixels (mmseg's aAcc).
    - ``mCA``: mean class accuracy, the mean per-class recall (mAcc).
    - ``mIoU_old``: mean IoU over S_0, background included (the paper's
      "old", e.g. 0-15).
    - ``mIoU_old_nobg``: the same without the background (MiB's 1-15).
    - ``mIoU_new``: mean IoU over S_k minus S_0 (the paper's "new", 16-20).
      Only for k >= 1: at step 0 there are no new classes and the key is
      omitted.
    - ``mIoU_step``: mean IoU over this step's own classes U_k (equals
      ``mIoU_old`` at step 0).
    - ``hIoU``: harmonic mean of ``mIoU_old`` and ``mIoU_new`` (k >= 1 only).
    - ``IoU.<class name>``: the IoU of each class of S_k.

    Ignored pixels (``ignore_index``) count nowhere. A class with union 0
    (absent from both labels and predictions) has IoU NaN, as in mmseg; all
    means skip NaN (nanmean), so such a class neither helps nor hurts, and a
    mean whose classes are all NaN is NaN. A class predicted but never
    labelled has IoU 0 and class accuracy NaN. With ``nan_to_num`` the
    per-class NaNs are replaced first (mmseg's option) and enter the means.

    Which output index belongs to which step comes from
    ``dataset_meta['class_steps']`` (set by the incremental datasets, e.g.
    ``((0, ..., 15), (16,), (17,))`` at step 2 of VOC 15-1), otherwise from
    the ``class_steps`` argument; with neither, every class counts as a
    step-0 class (a joint / non-incremental run: no ``mIoU_new``, ``hIoU``).

    Args:
        class_steps (Sequence[Sequence[int]], optional): Output indices
            learnt at each step 0..k, used when the dataset's metainfo has
            none. If both are given they must agree. Defaults to None.
        background_index (int): Output index of the background class, left
            out of ``mIoU_old_nobg``; must be a step-0 class. Defaults to 0.
        ignore_index (int): Label ignored in evaluation. Defaults to 255.
        nan_to_num (int, optional): Replace per-class NaN by this number
            before averaging. Defaults to None (NaN skipped).
        collect_device (str): ``'cpu'`` or ``'gpu'``, for collecting
            results across ranks. Defaults to ``'cpu'``.
        output_dir (str, optional): Where to save predictions as PNG.
            Defaults to None.
        format_only (bool): Only save predictions, compute nothing.
            Defaults to False.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
    """

    def __init__(self,
                 class_steps: Optional[Sequence[Sequence[int]]] = None,
                 background_index: int = 0,
                 ignore_index: int = 255,
                 nan_to_num: Optional[int] = None,
                 collect_device: str = 'cpu',
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        iou_metrics = kwargs.pop('iou_metrics', ['mIoU'])
        if list(iou_metrics) != ['mIoU']:
            raise ValueError(
                f'IncrementalIoUMetric computes IoU and accuracy only; got '
                f'iou_metrics={iou_metrics!r}. Drop the argument (or use '
                "mmseg's IoUMetric for mDice / mFscore).")
        super().__init__(
            ignore_index=ignore_index,
            iou_metrics=['mIoU'],
            nan_to_num=nan_to_num,
            collect_device=collect_device,
            output_dir=output_dir,
            format_only=format_only,
            prefix=prefix,
            **kwargs)
        self.class_steps = class_steps
        self.background_index = background_index

    def resolve_class_steps(self, num_classes: int) -> ClassSteps:
        """The validated class steps: dataset metainfo, argument, or all
        classes in step 0 (see the class docstring)."""
        from_meta = (self.dataset_meta or {}).get('class_steps')
        if from_meta is not None and self.class_steps is not None:
            meta = check_class_steps(from_meta, num_classes)
            arg = check_class_steps(self.class_steps, num_classes)
            if meta != arg:
                raise ValueError(
                    f'class_steps={arg} of IncrementalIoUMetric contradicts '
                    f"the dataset's metainfo class_steps={meta}; drop the "
                    'metric argument (the dataset knows its task).')
        steps = from_meta if from_meta is not None else self.class_steps
        if steps is None:
            steps = (tuple(range(num_classes)), )
        return check_class_steps(steps, num_classes, self.background_index)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute the metrics from the per-image areas of :meth:`process`.

        Args:
            results (list): ``(area_intersect, area_union, area_pred_label,
                area_label)`` per image, each of shape (num_classes, ).

        Returns:
            Dict[str, float]: The keys listed in the class docstring.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {self.output_dir}')
            return OrderedDict()
        if not results:
            raise ValueError(
                'IncrementalIoUMetric got no results: the evaluation split '
                'is empty; check the dataset (step, eval_protocol).')
        class_names = tuple(self.dataset_meta['classes'])
        steps = self.resolve_class_steps(len(class_names))
        # Sum in float64: float32 counts lose integers past 2**24 pixels.
        intersect, union, pred_label, label = (
            torch.stack([torch.as_tensor(a) for a in area]).double().sum(0)
            for area in zip(*results))
        per_class = self.total_area_to_metrics(intersect, union, pred_label,
                                               label, ['mIoU'],
                                               self.nan_to_num)
        iou, acc = per_class['IoU'], per_class['Acc']

        old = np.array(steps[0])
        old_nobg = old[old != self.background_index]
        metrics = OrderedDict(
            mIoU=_nanmean(iou),
            mPA=float(per_class['aAcc']),
            mCA=_nanmean(acc),
            mIoU_old=_nanmean(iou[old]),
            mIoU_old_nobg=_nanmean(iou[old_nobg]),
            mIoU_step=_nanmean(iou[np.array(steps[-1])]))
        if len(steps) > 1:
            new = np.array([i for step in steps[1:] for i in step])
            metrics['mIoU_new'] = _nanmean(iou[new])
            metrics['hIoU'] = _harmonic_mean(metrics['mIoU_old'],
                                             metrics['mIoU_new'])
        metrics = OrderedDict((k, _percent(v)) for k, v in metrics.items())
        for name, value in zip(class_names, iou):
            metrics[f'IoU.{name}'] = _percent(value)

        self._log_tables(class_names, steps, iou, acc, metrics)
        return metrics

    @staticmethod
    def _log_tables(class_names: Sequence[str], steps: ClassSteps,
                    iou: np.ndarray, acc: np.ndarray,
                    metrics: Dict[str, float]) -> None:
        """Print the per-class table (as mmseg) and the step summary."""
        logger: MMLogger = MMLogger.get_current_instance()
        step_of = {i: k for k, step in enumerate(steps) for i in step}
        table = PrettyTable()
        table.add_column('Class', list(class_names))
        table.add_column('Step', [step_of[i] for i in range(len(iou))])
        table.add_column('IoU', [_percent(v) for v in iou])
        table.add_column('Acc', [_percent(v) for v in acc])
        print_log('per class results:', logger)
        print_log('\n' + table.get_string(), logger=logger)

        summary_keys: List[str] = [
            k for k in metrics if not k.startswith('IoU.')
        ]
        summary = PrettyTable()
        for key in summary_keys:
            summary.add_column(key, [metrics[key]])
        print_log(f'incremental summary (step {len(steps) - 1}):', logger)
        print_log('\n' + summary.get_string(), logger=logger)
