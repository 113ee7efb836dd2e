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
"""
import datetime
import time
from typing import Callable, Optional, Sequence, Union

from mmengine.hooks import Hook, LoggerHook

from mmseg.registry import HOOKS

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
