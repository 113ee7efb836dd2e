"""The authors' VOC split sizes as an oracle (``--check-splits``)."""
import os.path as osp

import numpy as np
from mmengine.config import Config
from PIL import Image

from mmseg_incremental.datasets.reference_splits import (AUTHORS_VOC_TRAIN,
                                                         expected_split_sizes,
                                                         split_mismatches)
from mmseg_incremental.experiment import train_split_sizes
from test_experiment.utils import call_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_reference_counts_partition_voc_aug():
    for counts in AUTHORS_VOC_TRAIN.values():
        assert sum(counts) == 10582  # every train_aug image, once
    assert expected_split_sizes('voc', '15-1', 'sequential') == \
        (8437, 378, 299, 420, 500, 548)
    assert expected_split_sizes('voc', '15-5s', 'sequential')[1] == 378
    assert expected_split_sizes('voc', '15-1', 'disjoint') is None
    assert expected_split_sizes('ade', '100-50', 'sequential') is None
    assert split_mismatches((10034, 548), (10034, 548)) == []
    assert split_mismatches((10034, 548), (10034, 540)) == [
        "step 1: 540 images, the paper's lists have 548 (-8)"
    ]
    assert split_mismatches((1, 2),
                            (1, 2, 3)) == ['3 steps counted, 2 expected']


def _brute_force_sequential(root: str, num_old: int, steps: list) -> list:
    """Step of each image = the step of its highest foreground class."""
    with open(osp.join(root, 'ImageSets/Segmentation/train.txt')) as f:
        names = f.read().split()
    counts = [0] * len(steps)
    for name in names:
        mask = np.array(
            Image.open(osp.join(root, 'SegmentationClass', name + '.png')))
        fg = set(np.unique(mask).tolist()) - {0, 255}
        if fg:
            top = max(fg)
            counts[next(k for k, s in enumerate(steps) if top in s)] += 1
    return counts


def test_train_split_sizes_equal_brute_force(embedded_voc):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/embedded/bench_15-1_ld.py'))
    cfg.data_root = embedded_voc
    steps = [list(range(16))] + [[c] for c in range(16, 21)]
    assert train_split_sizes(cfg) == _brute_force_sequential(
        embedded_voc, 16, steps)


def test_check_splits_flag_reports_and_fails_on_mismatch(embedded_voc):
    proc = call_tool('train_incremental.py',
                     osp.join(ROOT, 'configs/embedded/bench_19-1_ft.py'),
                     '--check-splits', '--cfg-options',
                     f'data_root={embedded_voc}')
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Differs from the authors' lists" in proc.stdout
    assert "the paper's lists have 10034" in proc.stdout
