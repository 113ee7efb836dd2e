"""PLOP's per-step entropy thresholds, fitted before a step trains."""
import logging
import time
from typing import List, Optional, Tuple

import numpy as np
from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
import torch.nn as nn
from torch.utils.data import DataLoader

from mmseg.registry import HOOKS

from ...models.terms import DistillTerm, PseudoLabelTerm
from ...utils.randomness import preserved_rng
from .runner_model import runner_model

#: Where the fitted thresholds travel in a checkpoint (plain data).
CHECKPOINT_KEY = 'pseudo_label_thresholds'


def spread_indices(num_images: int, max_images: Optional[int]) -> List[int]:
    """All indices, or ``max_images`` of them evenly spread over the
    dataset (deterministic)."""
    if max_images is None or max_images >= num_images:
        return list(range(num_images))
    picks = np.linspace(0, num_images - 1, num=max_images)
    return sorted({int(round(x)) for x in picks})


@HOOKS.register_module()
class PseudoLabelHook(Hook):
    """Fit PLOP's pseudo-label thresholds of a step before it trains.

    PLOP (``train.py``, ``Trainer.before`` -> ``find_median``) runs the
    teacher M_{k-1} once over the step's training loader, augmentation
    included, and reads a per-class entropy threshold off the histograms
    of the background pixels. At ``before_train`` this hook does the same
    for a model with a ``PseudoLabelTerm`` (any other model: nothing
    happens): it reads the training set of
    ``runner.train_dataloader`` through a loader of its own (same
    collate, batch size and workers; every image once, in order, so the
    training sampler does not move), preprocesses each batch with the
    model's ``data_preprocessor`` as in training and calls the term's
    ``fit_thresholds``. The Python, numpy and torch
    generators are restored afterwards, so the training draws what it would
    have drawn without the pass.

    Cost: one teacher forward (no backward, no student) per training image
    of the step, i.e. about ``num_images / batch_size`` teacher forwards;
    ``max_images`` bounds it (evenly spread images; None: all, as PLOP).
    In a distributed run rank 0 makes the pass and broadcasts the
    thresholds (all ranks use the same ones; PLOP's ranks each use their
    own shard's).

    The thresholds are stored in every checkpoint (``CHECKPOINT_KEY``, plain
    data) and a resumed step reuses them instead of making the pass again
    (only if they were fitted for the same classes and settings).

    Args:
        max_images (int, optional): At most this many images in the pass.
            Defaults to None (all).
        batch_size (int, optional): Images per teacher forward. Defaults to
            None (the training loader's).
    """

    priority = 'NORMAL'

    def __init__(self,
                 max_images: Optional[int] = None,
                 batch_size: Optional[int] = None) -> None:
        if max_images is not None and int(max_images) < 1:
            raise ValueError(f'PseudoLabelHook got max_images={max_images};'
                             ' use a positive number or None (all).')
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f'PseudoLabelHook got batch_size={batch_size};'
                             ' use a positive number or None.')
        self.max_images = None if max_images is None else int(max_images)
        self.batch_size = None if batch_size is None else int(batch_size)

    @staticmethod
    def _model(runner) -> Tuple[Optional[nn.Module], Optional[DistillTerm]]:
        """The model and its pseudo-labelling term, or (None, None)."""
        model = runner_model(runner)
        terms = model.terms_of_type(PseudoLabelTerm) if hasattr(
            model, 'terms_of_type') else []
        return (model, terms[0]) if terms else (None, None)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        _, term = self._model(runner)
        if term is not None and term.load_state(
                checkpoint.get(CHECKPOINT_KEY)):
            print_log(
                'PseudoLabelHook: entropy thresholds read from the '
                'checkpoint (no pass over the training set).',
                logger='current',
                level=logging.INFO)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        _, term = self._model(runner)
        if term is not None and term.state() is not None:
            checkpoint[CHECKPOINT_KEY] = term.state()

    def before_train(self, runner) -> None:
        model, term = self._model(runner)
        if term is None or term.state() is not None:
            return
        box = [None]
        if get_rank() == 0:
            start = time.perf_counter()
            with preserved_rng(cuda=True):
                num = self._fit(runner, model, term)
            box = [term.state()]
            thresholds = ', '.join(f'{t:.4g}' for t in box[0]['thresholds'])
            print_log(
                'PseudoLabelHook: entropy thresholds of '
                f'{model.num_seen_classes} classes from the teacher over '
                f'{num} training images in '
                f'{time.perf_counter() - start:.1f} s: {thresholds}',
                logger='current',
                level=logging.INFO)
        broadcast_object_list(box)
        if get_rank() != 0:
            term.load_state(box[0])

    def _fit(self, runner, model, term) -> int:
        """One pass of the teacher over the training set; the number of
        images."""
        loader = runner.train_dataloader
        dataset = loader.dataset
        indices = spread_indices(len(dataset), self.max_images)
        batch_size = self.batch_size or loader.batch_size or 1
        workers = loader.num_workers
        ordered = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=indices,
            num_workers=workers,
            collate_fn=loader.collate_fn,
            worker_init_fn=loader.worker_init_fn,
            pin_memory=loader.pin_memory,
            drop_last=False)

        def batches():
            for data in ordered:
                data = model.data_preprocessor(data, True)
                yield data['inputs'], data['data_samples']

        term.fit_thresholds(model, batches())
        return len(indices)
