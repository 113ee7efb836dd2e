"""The progress of a whole incremental experiment in every step's log.

mmengine's ``eta`` covers the running step only. An experiment of K steps
(VOC 15-1: 16,000 iterations at step 0, then five steps of 1,000) needs the
time left over *all* steps, so every step's Runner of
:class:`~mmseg_incremental.experiment.IncrementalExperiment` gets this hook,
which logs, every ``interval`` training iterations and at the step's last::

    Experiment: step 2/5 (iter 30/40), elapsed 0:03:12, ETA 0:05:40

* ``step k/K``: the running step k of steps 0..K (``max_step`` if set).
* ``elapsed``: wall time since the experiment started in this process
  (``start_time``; a resumed experiment counts from the resume).
* ``ETA``: the iterations left in this step and all later ones, times the
  seconds per iteration measured so far: wall time of the training
  iterations run in this process, over all its steps (checkpoint saves
  included; set-up and validation between steps are not), divided by
  their number. No smoothing, no per-step model.

:class:`StepTimingHook` times the phases of one step (set-up, first
iteration, steady-state iterations, end of training) for the step's
``timing`` in ``step_done.json``; :func:`format_step_timing` writes them as
one log line.
"""
import datetime
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook, LoggerHook

from mmseg.registry import HOOKS
from .runner_model import on_cuda

DATA_BATCH = Optional[Union[dict, tuple, list]]
#: mmengine's ``LoggerHook`` interval when a Runner has none.
DEFAULT_INTERVAL = 10


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``1 day, H:MM:SS`` beyond a day), whole seconds."""
    return str(datetime.timedelta(seconds=int(round(max(seconds, 0.0)))))


def experiment_eta(remaining_iters: int, seconds: float, iters: int) -> float:
    """Seconds left: ``remaining_iters`` x the measured ``seconds / iters``
    (0 when nothing is left or nothing was measured yet)."""
    if remaining_iters <= 0 or iters <= 0:
        return 0.0
    return remaining_iters * seconds / iters


@HOOKS.register_module()
class ExperimentProgressHook(Hook):
    """Log ``Experiment: step k/K (iter i/n), elapsed .., ETA ..``.

    Args:
        step (int): The step k this Runner trains.
        step_iters (Sequence[int]): The training iterations of every step
            the experiment runs, ``step_iters[j]`` for step j = 0..K.
        interval (int, optional): Log every ``interval`` iterations.
            Defaults to None: the Runner's ``LoggerHook`` interval.
        start_time (float, optional): When the experiment started, as a
            ``time.monotonic()`` value. Defaults to None: this step's start.
        timed_seconds (float): Wall time of the training iterations that
            earlier steps ran in this process. Defaults to 0.
        timed_iters (int): Their number. Defaults to 0.

    After training, :attr:`timed_seconds` and :attr:`timed_iters` include
    this step's iterations: the experiment hands them to the next step's
    hook.
    """

    # LoggerHook's priority; registered after it, so the line follows
    # mmengine's ``Iter(train)`` line.
    priority = 'BELOW_NORMAL'

    def __init__(self,
                 step: int,
                 step_iters: Sequence[int],
                 interval: Optional[int] = None,
                 start_time: Optional[float] = None,
                 timed_seconds: float = 0.0,
                 timed_iters: int = 0) -> None:
        if not 0 <= step < len(step_iters):
            raise ValueError(f'step {step} is not one of the experiment\'s '
                             f'steps 0..{len(step_iters) - 1}.')
        self.step = step
        self.step_iters = [int(n) for n in step_iters]
        self.interval = interval
        self.start_time = start_time
        self.timed_seconds = float(timed_seconds)
        self.timed_iters = int(timed_iters)
        #: The clock of every time here (tests replace it).
        self.clock: Callable[[], float] = time.monotonic
        self._step_start = 0.0
        self._start_iter = 0
        self._earlier = (self.timed_seconds, self.timed_iters)

    def before_train(self, runner) -> None:
        """Start this step's clock; take the LoggerHook's interval."""
        if self.interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self.interval = (
                loggers[0].interval if loggers else DEFAULT_INTERVAL)
        self._step_start = self.clock()
        if self.start_time is None:
            self.start_time = self._step_start
        self._start_iter = runner.iter  # > 0 when the step resumed
        self._earlier = (self.timed_seconds, self.timed_iters)

    def _measure(self, done: int) -> float:
        """Count this step's iterations up to ``done`` and their wall time
        into :attr:`timed_iters` / :attr:`timed_seconds`; return now."""
        now = self.clock()
        self.timed_seconds = self._earlier[0] + now - self._step_start
        self.timed_iters = self._earlier[1] + done - self._start_iter
        return now

    def progress(self, runner) -> str:
        """The progress line after iteration ``runner.iter`` (0-based)."""
        done = runner.iter + 1
        now = self._measure(done)
        max_iters = runner.max_iters
        remaining = max_iters - done + sum(self.step_iters[self.step + 1:])
        eta = experiment_eta(remaining, self.timed_seconds, self.timed_iters)
        return (f'Experiment: step {self.step}/{len(self.step_iters) - 1} '
                f'(iter {done}/{max_iters}), elapsed '
                f'{format_duration(now - self.start_time)}, ETA '
                f'{format_duration(eta)}')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Log every ``interval`` iterations and at the step's last."""
        if self.every_n_train_iters(runner, self.interval) or \
                self.is_last_train_iter(runner):
            runner.logger.info(self.progress(runner))

    def after_train(self, runner) -> None:
        """Count the whole step for the next step's hook."""
        self._measure(runner.iter)


def fixed_overhead(total_s: float, train_iters: int, iter_s: Optional[float],
                   first_iter_s: Optional[float]) -> float:
    """A step's wall time beyond its steady-state iterations:
    ``total_s - train_iters * iter_s`` (``first_iter_s`` in place of a
    missing ``iter_s``; ``total_s`` when no iteration ran)."""
    per_iter = iter_s if iter_s is not None else first_iter_s
    if not train_iters or per_iter is None:
        return total_s
    return total_s - train_iters * per_iter


#: ``(key, name)`` of the phases :func:`format_step_timing` writes before
#: and after the iterations.
_PHASES_BEFORE_ITERS = (('build_s', 'build'), ('setup_s', 'set-up'),
                        ('first_iter_s', 'first iter'))
_PHASES_AFTER_ITERS = (
    ('train_end_s', 'end'),
    ('val_s', 'val'),
    ('total_s', 'total'),
)


def format_step_timing(step: int, timing: Dict[str, Optional[float]]) -> str:
    """One line of a step's ``timing`` (see :class:`StepTimingHook`), e.g.
    ``Step 2 timing: build 1.2 s, set-up 3.4 s, first iter 5.6 s, 40 iters
    x 0.071 s, end 0.8 s, val 2.0 s, total 15.0 s (fixed overhead 9.1 s)``.

    Phases missing from ``timing`` (a reused M_0 has only ``build_s``,
    ``val_s`` and ``total_s``) or None are left out.
    """

    def seconds(value: float) -> str:
        return f'{value:.3g} s' if abs(value) < 1 else f'{value:.1f} s'

    parts = []
    for key, name in _PHASES_BEFORE_ITERS:
        if timing.get(key) is not None:
            parts.append(f'{name} {seconds(timing[key])}')
    iters = timing.get('train_iters')
    if iters is not None:
        if timing.get('iter_s') is not None:
            parts.append(f'{iters} iters x {seconds(timing["iter_s"])}')
        else:
            parts.append(f'{iters} iter' + ('' if iters == 1 else 's'))
    for key, name in _PHASES_AFTER_ITERS:
        if timing.get(key) is not None:
            parts.append(f'{name} {seconds(timing[key])}')
    line = f'Step {step} timing: ' + ', '.join(parts)
    if timing.get('overhead_s') is not None:
        line += f' (fixed overhead {seconds(timing["overhead_s"])})'
    return line


@HOOKS.register_module()
class StepTimingHook(Hook):
    """Time stamps of a step's training iterations, for its phase timing.

    It stamps ``time.perf_counter()`` before the first training iteration
    and after every one; with the model on CUDA it calls
    ``torch.cuda.synchronize()`` before the first stamp and after the first
    and the last iteration, so those stamps include the GPU work queued so
    far (at the other iterations a sync would stall the pipeline; their
    stamps run at the GPU's pace once the host is a bounded amount ahead).
    :meth:`phases` turns them, with the wall time of the ``runner.train()``
    call, into:

    * ``setup_s``: from the start of ``runner.train()`` to the start of the
      first iteration (model init and load, optimizer, ``before_train``
      hooks, the first batch: the dataloader's start);
    * ``first_iter_s``: the first iteration;
    * ``train_iters``: the iterations run in this call; ``iter_s``: the
      median of the later ones (each from the end of the previous one,
      its batch loading included, as mmengine's ``time``; None with one);
    * ``train_end_s``: from the end of the last iteration (before the
      ``CheckpointHook`` saved it: ``LOW`` priority) to the return of
      ``runner.train()``: the final checkpoint, ``after_train`` hooks.

    The experiment registers one on each step's Runner, as the
    :class:`ExperimentProgressHook`.
    """

    # Before CheckpointHook (VERY_LOW): the final save counts to the end.
    priority = 'LOW'

    def __init__(self) -> None:
        #: The clock of every stamp (tests replace it).
        self.clock: Callable[[], float] = time.perf_counter
        self.first_start: Optional[float] = None
        self.iter_ends: List[float] = []
        self._sync = False

    def _now(self, sync: bool = True) -> float:
        if sync and self._sync:
            torch.cuda.synchronize()
        return self.clock()

    def before_train(self, runner) -> None:
        """Start afresh; sync CUDA at the stamps if the model is there."""
        self.first_start = None
        self.iter_ends = []
        self._sync = on_cuda(runner.model)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Stamp the start of the first iteration."""
        if self.first_start is None:
            self.first_start = self._now()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Stamp the end of an iteration."""
        sync = self._sync and (not self.iter_ends
                               or self.is_last_train_iter(runner))
        self.iter_ends.append(self._now(sync))

    def phases(self, train_start: float,
               train_end: float) -> Dict[str, Optional[float]]:
        """The training phases of a ``runner.train()`` call that ran from
        ``train_start`` to ``train_end`` (values of :attr:`clock`)."""
        if self.first_start is None or not self.iter_ends:
            # Nothing trained (resumed at the last iteration).
            return dict(
                setup_s=train_end - train_start,
                first_iter_s=None,
                train_iters=0,
                iter_s=None,
                train_end_s=0.0)
        later = [b - a for a, b in zip(self.iter_ends, self.iter_ends[1:])]
        return dict(
            setup_s=self.first_start - train_start,
            first_iter_s=self.iter_ends[0] - self.first_start,
            train_iters=len(self.iter_ends),
            iter_s=statistics.median(later) if later else None,
            train_end_s=train_end - self.iter_ends[-1])
