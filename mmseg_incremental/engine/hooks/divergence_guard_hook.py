"""Stop a step whose loss or parameters stop being finite."""
import math
from typing import Dict, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmseg.registry import HOOKS
from ...utils.errors import TrainingDiverged

DATA_BATCH = Optional[dict]


def step_name(runner) -> str:
    """``step 3`` for a step of an experiment, else the runner's name."""
    name = str(runner.cfg.get('experiment_name') or runner.experiment_name)
    return name.replace('step_', 'step ') if name.startswith('step_') \
        else name


def likely_cause(runner) -> str:
    """What usually makes a loss diverge, with this step's values."""
    wrapper = runner.optim_wrapper
    try:
        lrs = sorted({
            lr
            for values in wrapper.get_lr().values() for lr in values
        })
    except (AttributeError, TypeError):
        lrs = []
    lr = (f'lr {lrs[-1]:.3g}' if lrs else 'the lr')
    cause = (f'{lr} too high (lower lr_step0 / lr_incremental)')
    dtype = getattr(wrapper, 'cast_dtype', None)
    if dtype == torch.float16 or (type(wrapper).__name__.startswith('Amp')
                                  and dtype is None):
        cause += (" or fp16 overflow under AMP (use amp='bf16' where the "
                  "GPU has it, or amp=None)")
    return cause


def non_finite_parameters(model: torch.nn.Module) -> Tuple[int, int]:
    """``(non-finite tensors, tensors)`` among ``model``'s parameters and
    floating-point buffers; one host sync in all."""
    tensors = [
        t for t in list(model.parameters()) + list(model.buffers())
        if t.is_floating_point()
    ]
    if not tensors:
        return 0, 0
    bad = torch.stack([(~torch.isfinite(t)).any() for t in tensors])
    return int(bad.sum()), len(tensors)


@HOOKS.register_module()
class DivergenceGuardHook(Hook):
    """Stop training at the first non-finite loss, with one line that
    names the step, the iteration, the loss term and the likely cause.

    A diverged step must leave no result behind: the error it raises
    (:class:`~mmseg_incremental.utils.errors.TrainingDiverged`) ends the
    experiment before its M_k is published to the step-0 store, used as
    the next step's teacher or written to ``summary.json``.
    ``AtomicCheckpointHook`` refuses to save non-finite parameters.

    The check costs no host sync: it reads the losses that the runtime-info
    hook already copied to the host for logging (``train/*`` scalars of the
    message hub; with ``DeferredRuntimeInfoHook`` one iteration late, and
    named with that iteration).

    With ``skip_limit > 0`` (the ``nan_policy='skip'`` setting, fp16 AMP
    only) a non-finite loss is logged and its iteration passes -- the AMP
    loss scaler has skipped its optimizer step, as mmengine's
    ``AmpOptimWrapper`` does for non-finite gradients -- until
    ``skip_limit`` come in a row; non-finite parameters still stop the step
    at the next checkpoint.

    Args:
        skip_limit (int): Non-finite losses in a row that are tolerated.
            Defaults to 0: the first one stops the step.
    """

    # After the runtime-info hook (VERY_HIGH) recorded the losses, before
    # the CheckpointHook (NORMAL) saves.
    priority = 'ABOVE_NORMAL'

    def __init__(self, skip_limit: int = 0) -> None:
        if skip_limit < 0:
            raise ValueError(f'skip_limit={skip_limit}; use >= 0.')
        self.skip_limit = skip_limit
        self._checked = -1
        self._in_row = 0

    def before_train(self, runner) -> None:
        self._checked = -1
        self._in_row = 0

    def _recorded_iter(self, runner) -> int:
        for hook in runner.hooks:
            recorded = getattr(hook, 'recorded_iter', None)
            if recorded is not None:
                return recorded
        return runner.iter

    def _losses(self, runner) -> Dict[str, float]:
        out = {}
        for key, buffer in runner.message_hub.log_scalars.items():
            if key.startswith('train/') and 'loss' in key:
                out[key[len('train/'):]] = float(buffer.current())
        return out

    def check(self, runner) -> None:
        """Raise if a loss recorded since the last check is not finite."""
        iteration = self._recorded_iter(runner)
        if iteration <= self._checked:
            return
        self._checked = iteration
        bad = {
            k: v
            for k, v in self._losses(runner).items() if not math.isfinite(v)
        }
        if not bad:
            self._in_row = 0
            return
        # Name a term rather than the total, when one is at fault.
        terms = [k for k in bad if k != 'loss'] or list(bad)
        key = terms[0]
        if self._in_row < self.skip_limit:
            self._in_row += 1
            print_log(
                f'{step_name(runner).capitalize()}: {key} is {bad[key]} at '
                f'iteration {iteration + 1}; its optimizer step was skipped '
                f'by the AMP loss scaler ({self._in_row} of '
                f'{self.skip_limit} allowed in a row, nan_policy=\'skip\').',
                logger='current',
                level=30)
            return
        text = (f'{step_name(runner).capitalize()} diverged: {key} is '
                f'{bad[key]} at iteration {iteration + 1} of '
                f'{runner.max_iters}; the step stopped and nothing of it is '
                f'kept as a result. Likely cause: {likely_cause(runner)}. '
                f'Remove {runner.work_dir} and run again with --resume, or '
                'use another --work-dir.')
        print_log(text, logger='current', level=40)
        raise TrainingDiverged(text)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        self.check(runner)

    def after_train(self, runner) -> None:
        self.check(runner)
