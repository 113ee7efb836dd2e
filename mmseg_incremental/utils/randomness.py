"""Draw random numbers without moving the process's generators."""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


@contextmanager
def preserved_rng(cuda: bool = False) -> Iterator[None]:
    """Restore Python's, numpy's and torch's CPU generators (with
    ``cuda=True`` also every initialised CUDA device's) on exit, so that
    what runs inside (a seeded augmentation, a pass over the data) leaves
    the training's sampler and augmentations where they were."""
    python, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if (
        cuda and torch.cuda.is_available()
        and torch.cuda.is_initialized()) else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy_state)
