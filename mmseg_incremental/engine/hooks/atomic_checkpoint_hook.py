"""mmengine's ``CheckpointHook`` with crash-safe checkpoint files."""
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmseg.registry import HOOKS
from ...utils.atomic_io import (fsync_dir, raise_if_disk_full, replace_file,
                                write_text)
from ...utils.errors import TrainingDiverged
from .divergence_guard_hook import non_finite_parameters, step_name

#: Suffix of a checkpoint being written (``iter_8.pth.tmp``).
TMP_SUFFIX = '.tmp'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose ``last_checkpoint`` always names a whole file.

    mmengine's hook removes the outdated checkpoint, writes the new one in
    place, then rewrites ``last_checkpoint``: a process killed in between
    leaves ``last_checkpoint`` naming a deleted or a truncated file, and
    ``--resume`` fails. This hook takes the same arguments and keeps the
    same files, in a safe order:

    .. code:: text

        _save_checkpoint_with_step(step)
         ├─ runner.save_checkpoint -> iter_<step>.pth.tmp
         ├─ fsync, rename          -> iter_<step>.pth     (complete)
         ├─ write, fsync, rename   -> last_checkpoint      (names it)
         └─ remove the checkpoint beyond max_keep_ckpts    (only now)

    A kill at any point leaves ``last_checkpoint`` naming a complete file
    (the new or the previous one) and at most a stale ``*.pth.tmp``, which
    the next ``before_train`` removes. A checkpoint that keeps the number of
    ``max_keep_ckpts`` resumes with the same bookkeeping as mmengine's.

    Two more refusals, each one line (the step stops, the previous
    checkpoint stays as it was, no ``*.tmp`` is left):

    - parameters that are not finite (a diverged step) are never saved
      (:class:`~mmseg_incremental.utils.errors.TrainingDiverged`);
    - a full disk (or quota) names the file and the free space
      (:class:`~mmseg_incremental.utils.errors.DiskFull`).

    Checkpoints written through another file backend (``backend_args`` of
    a remote store) have no atomic rename; they, and ``save_best``'s
    ``best_*.pth``, are saved by mmengine's code unchanged.

    Args:
        **kwargs: ``CheckpointHook``'s arguments.
    """

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def before_train(self, runner) -> None:
        """Set up as mmengine does, then drop checkpoints a kill left half
        written."""
        super().before_train(runner)
        if self._is_local() and is_main_process():
            pattern = self.filename_tmpl.format('*') + TMP_SUFFIX
            for path in glob.glob(osp.join(self.out_dir, pattern)):
                os.remove(path)

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """Save ``step``'s checkpoint, point ``last_checkpoint`` at it,
        then remove the outdated one."""
        if not self._is_local():
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        bad, total = non_finite_parameters(runner.model)
        if bad:
            raise TrainingDiverged(
                f'{step_name(runner).capitalize()} diverged: {bad} of '
                f'{total} parameter/buffer tensors are not finite at '
                f'iteration {step}; {filename} was not saved and nothing of '
                f'the step is kept as a result. Remove {runner.work_dir} and '
                'run again with --resume (lower the lr), or use another '
                '--work-dir.')
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp = self.last_ckpt + TMP_SUFFIX
        try:
            runner.save_checkpoint(
                self.out_dir,
                filename + TMP_SUFFIX,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if not is_main_process():
                return
            replace_file(tmp, self.last_ckpt)
            write_text(
                osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        except OSError as error:
            if is_main_process() and osp.exists(tmp):
                os.remove(tmp)
            raise_if_disk_full(error, self.last_ckpt)
            raise
        if outdated is not None:
            path = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(path):
                os.remove(path)
                fsync_dir(self.out_dir)
