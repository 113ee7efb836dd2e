"""``--check-splits``: count each step's training images, compare with the
authors' lists (:mod:`mmseg_incremental.datasets.reference_splits`)."""
from typing import List, Tuple

from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from ..datasets.reference_splits import expected_split_sizes, split_mismatches
from ..planning import (build_step_config, experiment_task,
                        iter_incremental_datasets)


def step_dataset(loader: dict) -> BaseDataset:
    """Build the incremental dataset of a step's dataloader config."""
    init_default_scope('mmseg')
    return DATASETS.build(next(iter_incremental_datasets(loader)))


def train_split_sizes(cfg: Config) -> List[int]:
    """The number of training images of every step of ``cfg``'s task."""
    task = experiment_task(cfg)
    counts = []
    for step in range(task.num_steps):
        step_cfg = build_step_config(
            cfg, step, work_dir='', teacher_checkpoint='unused.pth')
        counts.append(len(step_dataset(step_cfg.train_dataloader)))
    return counts


def check_splits(cfg: Config) -> Tuple[str, bool]:
    """A report of the split sizes and whether they match the paper's.

    Returns:
        tuple[str, bool]: The text to print, and False when the authors'
        counts exist for this task and setting and differ.
    """
    task = experiment_task(cfg)
    setting = cfg.get('setting', 'sequential')
    counts = train_split_sizes(cfg)
    expected = expected_split_sizes(task.dataset, str(task.name), setting)
    lines = [
        f'{task.dataset} {task.name} ({setting}): training images per '
        f'step: {", ".join(map(str, counts))}'
    ]
    if expected is None:
        lines.append('No published split sizes for this task and setting.')
        return '\n'.join(lines), True
    bad = split_mismatches(expected, counts)
    if bad:
        lines += [
            'Differs from the authors\' lists (real VOC 2012 + SBD, '
            f'{sum(expected)} images): '
        ] + ['  ' + b for b in bad]
        lines.append('Check data_root, ImageSets/Segmentation/train_aug.txt '
                     'and SegmentationClassAug/.')
    else:
        lines.append('Matches the authors\' lists exactly.')
    return '\n'.join(lines), not bad
