"""Save and stop at the iteration a preemption signal arrived."""
from typing import Optional

from mmengine.dist import barrier, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from mmseg.registry import HOOKS
from ...utils.errors import Preempted
from ...utils.preemption import agreed_preemption, preemption_requested
from .divergence_guard_hook import step_name

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Turn SIGTERM / SIGINT / SIGUSR1 into a checkpoint and a clean stop.

    The experiment catches the signals
    (:func:`~mmseg_incremental.utils.preemption.catch_preemption`); after
    the training iteration in which one arrived, this hook has the step's
    ``CheckpointHook`` save ``iter_<i>.pth`` at the current iteration
    (atomically, as every checkpoint), logs one line and raises
    :class:`~mmseg_incremental.utils.errors.Preempted` (exit status 75).
    ``--resume`` continues from that iteration and ends with the metrics of
    an uninterrupted run.

    With several processes the ranks agree first (one ``all_reduce`` of a
    flag every ``sync_interval`` iterations: a rank whose scheduler sent
    the signal to it alone still stops in step with the others); one
    process reads its flag at every iteration, for free.

    Args:
        sync_interval (int): Iterations between two agreements of the
            ranks (distributed runs only). Defaults to 10.
    """

    # After the CheckpointHook (NORMAL) and the loggers.
    priority = 'LOWEST'

    def __init__(self, sync_interval: int = 10) -> None:
        if sync_interval < 1:
            raise ValueError(f'sync_interval={sync_interval}; use >= 1.')
        self.sync_interval = sync_interval

    def _signal(self, runner) -> Optional[str]:
        if get_world_size() == 1:
            return preemption_requested()
        if not (self.every_n_train_iters(runner, self.sync_interval)
                or self.is_last_train_iter(runner)):
            return None
        return agreed_preemption()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        name = self._signal(runner)
        if name is None:
            return
        iteration = runner.iter + 1
        saved = None
        for hook in runner.hooks:  # the checkpoint's message hub complete
            if callable(getattr(hook, 'flush', None)):
                hook.flush(runner)
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch:
                filename = hook.filename_tmpl.format(iteration)
                if not str(hook.last_ckpt or '').endswith(filename):
                    hook._save_checkpoint(runner)
                saved = hook.last_ckpt
                break
        barrier()  # rank 0's file is complete before any rank exits
        where = (f'saved {saved}' if saved else
                 'no CheckpointHook to save with')
        text = (f'{name} received: {step_name(runner)} stopped at iteration '
                f'{iteration} of {runner.max_iters} ({where}); run again '
                'with --resume to continue from there.')
        print_log(text, logger='current', level=30)
        raise Preempted(text)
