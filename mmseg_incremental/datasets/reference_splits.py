"""The authors' split sizes on real VOC: an oracle for a user's VOC copy.

The lists of the authors' code (LTTM/IL-SemSegm, ``sample_dataset/``:
``train_1_19.txt``/``train_20.txt``, ``train_1_15.txt``/``train_16_20.txt``
and the ``train_<c>_<c>_notin_following.txt`` lists of 15-1) split the
10,582 SBD-augmented training images of VOC 2012 ``sequentially``: step k
keeps the images that show a class of U_k and none of a later step. A
user's ``train_aug.txt`` and ``SegmentationClassAug/`` reproduce these
counts exactly when they are the paper's data.
"""
from typing import Dict, List, Optional, Sequence, Tuple

#: Training images per step (sequential setting), real VOC 2012 + SBD.
AUTHORS_VOC_TRAIN: Dict[str, Tuple[int, ...]] = {
    '19-1': (10034, 548),
    '15-5': (8437, 2145),
    '15-1': (8437, 378, 299, 420, 500, 548),
}


def expected_split_sizes(dataset: str, task: str,
                         setting: str) -> Optional[Tuple[int, ...]]:
    """The authors' per-step training-image counts, or None where they
    published none (another dataset, task or setting)."""
    task = '15-1' if task == '15-5s' else task
    if dataset != 'voc' or setting != 'sequential':
        return None
    return AUTHORS_VOC_TRAIN.get(task)


def split_mismatches(expected: Sequence[int],
                     counts: Sequence[int]) -> List[str]:
    """One line per step whose count differs from the expected one."""
    if len(expected) != len(counts):
        return [f'{len(counts)} steps counted, {len(expected)} expected']
    return [
        f'step {k}: {got} images, the paper\'s lists have {want} '
        f'({got - want:+d})'
        for k, (want, got) in enumerate(zip(expected, counts)) if want != got
    ]
