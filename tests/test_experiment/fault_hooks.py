"""Test-only hooks that stop a real experiment process at a chosen point.

``python -m fault_hooks SCRIPT ARGS...`` (with this folder on PYTHONPATH)
registers the hooks, then runs SCRIPT as ``__main__``. A run puts one hook
in ``default_hooks``, which is outside the experiment's fingerprint, so a
later ``--resume`` without it continues the same experiment::

    --cfg-options default_hooks.fault.type=SigkillHook \\
        default_hooks.fault.step_dir=step_1 default_hooks.fault.at_iter=3
"""
import os
import os.path as osp
import runpy
import signal
import sys
import time

from mmengine.fileio import LocalBackend
from mmengine.hooks import Hook

from mmseg.registry import HOOKS


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # not reached: SIGKILL cannot be caught


class _AtIterHook(Hook):
    """Acts at iteration ``at_iter`` (1-based) of the step folder
    ``step_dir``, after every other hook (that iteration's checkpoint is
    saved)."""

    priority = 'LOWEST'

    def __init__(self, step_dir: str, at_iter: int) -> None:
        self.step_dir = step_dir
        self.at_iter = at_iter

    def _hit(self, runner, iteration: int) -> bool:
        return (osp.basename(runner.work_dir) == self.step_dir
                and iteration == self.at_iter)


@HOOKS.register_module()
class SigkillHook(_AtIterHook):
    """SIGKILLs its own process.

    Args:
        where (str): ``'after_iter'``: once the iteration's checkpoint is
            saved; ``'mid_write'``: inside the save of that checkpoint,
            once half of its bytes are on disk.
    """

    def __init__(self,
                 step_dir: str,
                 at_iter: int,
                 where: str = 'after_iter') -> None:
        super().__init__(step_dir, at_iter)
        assert where in ('after_iter', 'mid_write'), where
        self.where = where

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.where != 'mid_write' or \
                not self._hit(runner, checkpoint['meta']['iter']):
            return

        def half_then_die(backend, obj: bytes, filepath) -> None:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            _sigkill()

        LocalBackend.put = half_then_die

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if self.where == 'after_iter' and self._hit(runner, runner.iter + 1):
            _sigkill()


@HOOKS.register_module()
class PauseHook(_AtIterHook):
    """Creates ``ready_file``, then waits until ``go_file`` exists (with
    ``go_file=None``: until the process is killed).

    Args:
        ready_file (str): Created when the pause starts.
        go_file (str, optional): Ends the pause. Defaults to None.
        max_wait (float): Seconds before the hook gives up and raises (a
            guard against a test that never signals; ``test_faults`` passes
            its own bound). Defaults to 120.
    """

    def __init__(self,
                 step_dir: str,
                 at_iter: int,
                 ready_file: str,
                 go_file: str = None,
                 max_wait: float = 120.) -> None:
        super().__init__(step_dir, at_iter)
        self.ready_file = ready_file
        self.go_file = go_file
        self.max_wait = max_wait

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if not self._hit(runner, runner.iter + 1):
            return
        with open(self.ready_file, 'w') as f:
            f.write(str(os.getpid()))
        deadline = time.monotonic() + self.max_wait
        while not (self.go_file and osp.exists(self.go_file)):
            if time.monotonic() > deadline:
                raise TimeoutError(f'PauseHook: no {self.go_file}')
            time.sleep(0.05)


if __name__ == '__main__':
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name='__main__')
