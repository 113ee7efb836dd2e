"""A class-balanced exemplar memory of the previous steps' images.

DKD-M (Baek et al., NeurIPS 2022) keeps ``memory_size`` training images of
the previous steps and adds them to step k's training set (cvlab-yonsei/DKD
``utils/memory.py`` ``memory_sampling_balanced``, modified from SSUL;
``data_loader/data_loaders.py`` ``get_memory``: ``ConcatDataset([train,
memory])``). Here it is an experiment setting, ``memory_size``, for every
method alike.

How the memory of step k is chosen (:func:`balanced_memory`, DKD's
``memory.py`` l.104-138): the candidates are the memory of step k-1 (with
the classes each of its images was chosen for) and every training image of
step k-1 with the classes labelled in it at that step; the candidates and
the old classes S_{k-1} \\ {0} are shuffled, then the classes take turns,
each taking the first remaining candidate that shows it, until
``memory_size`` images are taken. One difference, stated: DKD labels the
background pixels of step k-1's images with M_{k-1}'s predictions of
confidence >= 0.9 before reading their classes (``memory.py`` l.98-107);
here a candidate's classes are those its step-k-1 label shows (no model
runs), so older classes are found in the memory they came from. And where
no class finds a candidate any more the sampling stops (DKD's loop would
not end).

A memory image is trained like the step's own images: the same label map
(DKD's memory dataset masks its labels as the step's,
``data_loader/dataset.py`` ``VOCSegmentationIncrementalMemory``).

The memory is a file of image ids, ``D/step_<k>/memory.json``, written
atomically before step k trains and reused when the step resumes.
"""
import json
import random
from typing import Dict, List, Optional, Sequence, Tuple

from ..utils.atomic_io import atomic_path, read_json

#: The memory file's format version.
MEMORY_FORMAT = 1

Candidate = Tuple[str, List[int]]


def balanced_memory(candidates: Sequence[Candidate], classes: Sequence[int],
                    size: int, seed: int) -> List[Candidate]:
    """DKD's class-balanced choice of ``size`` candidates.

    Args:
        candidates (Sequence[tuple]): ``(image id, classes it shows)``.
        classes (Sequence[int]): The old classes to balance (no 0).
        size (int): Images to take.
        seed (int): Seeds the two shuffles.

    Returns:
        list[tuple]: The chosen candidates, in the order they were taken.
    """
    rng = random.Random(seed)
    pool = [(name, list(labels)) for name, labels in candidates]
    rng.shuffle(pool)
    order = list(classes)
    rng.shuffle(order)
    chosen: List[Candidate] = []
    while len(chosen) < size:
        taken = len(chosen)
        for cls in order:
            for i, (_, labels) in enumerate(pool):
                if cls in labels:
                    chosen.append(pool.pop(i))
                    break
            if len(chosen) >= size:
                break
        if len(chosen) == taken:  # no class finds a candidate any more
            break
    return chosen


def memory_record(step: int, size: int, seed: int, classes: Sequence[int],
                  chosen: Sequence[Candidate]) -> Dict:
    """What ``memory.json`` holds."""
    return dict(
        format=MEMORY_FORMAT,
        step=step,
        size=size,
        seed=seed,
        classes=list(classes),
        candidates=[[name, list(labels)] for name, labels in chosen],
        memory=sorted(name for name, _ in chosen))


def write_memory(path: str, record: Dict) -> None:
    """Write ``memory.json`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(record, f, indent=1)


def read_memory(path: str) -> Dict:
    """Read ``memory.json`` (one error naming a damaged file)."""
    return read_json(path, 'exemplar memory')


def matching_memory(path: str, step: int, size: int,
                    seed: int) -> Optional[Dict]:
    """The memory in ``path`` when it was chosen for this step, size and
    seed (a resumed step reuses it); else None."""
    import os.path as osp
    if not osp.isfile(path):
        return None
    record = read_memory(path)
    if (record.get('format'), record.get('step'), record.get('size'),
            record.get('seed')) != (MEMORY_FORMAT, step, size, seed):
        return None
    return record
