"""Run every step of an incremental task with mmengine's Runner.

.. code:: text

    IncrementalExperiment.run()
     ├─ lock_work_dir()            D writable? D/experiment.lock: one run
     ├─ _claim_work_dir()          D/experiment.json: refuse another config
     └─ for k in 0..K:
         ├─ D/step_k/step_done.json exists -> keep it (resume)
         ├─ k == 0: Step0Store.reserve -> the store has M_0 (or gets it
         │    from an experiment training it now) -> reuse it, evaluate
         └─ else build_step_config(k, teacher = M_{k-1}) -> Runner
              .train() (resumed from D/step_k's newest loadable
                        checkpoint if asked: find_resume_checkpoint)
                 (ExperimentProgressHook: step k/K, elapsed, ETA of all
                  steps in the step's log)
              .val()   -> IncrementalIoUMetric -> D/step_k/step_done.json
                          (with the step's phase ``timing``, also logged)
         -> D/summary.json, D/report.md, plots; the step's metrics through
            the config's visualizer backends into D/vis_data (x = step k)

Only the last model M_{k-1} is handed to step k (the paper keeps no old
images and no older models).
"""
import json
import logging
import os
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.dist import (barrier, broadcast_object_list, get_rank,
                           get_world_size, init_dist, is_distributed)
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..engine.hooks import ExperimentProgressHook, StepTimingHook
from ..utils.atomic_io import read_json
from ..utils.errors import DamagedFile, Preempted
from ..utils.preemption import agreed_preemption, catch_preemption
from ..engine.hooks.experiment_progress_hook import (fixed_overhead,
                                                     format_step_timing)
from ..planning import (build_step_config, deploy_config,
                        experiment_fingerprint_source, experiment_task,
                        data_content_key, fingerprint, init_message,
                        list_steps, setting_value, step0_fingerprint_source,
                        step_fingerprint_source, step_iters)
from .dataloader_workers import shutdown_runner_workers
from .memory import ensure_memory, memory_seed
from .plan_check import check_plan
from .provenance import provenance
from .resume import find_resume_checkpoint
from .step0_store import Step0Store
from .summary import dump_json, metrics_to_summary, write_summary
from .visualizer import (check_vis_backends, experiment_visualizer,
                         log_step_metrics, unique_visualizer)
from .work_dir_lock import lock_work_dir

DONE_FILE = 'step_done.json'


def init_distributed(launcher: str, dist_cfg: Optional[dict] = None) -> None:
    """Start torch.distributed before the experiment plans its steps.

    The plan needs the world size (``total_batch_size`` is split over the
    processes), so the processes join here rather than in mmengine's
    Runner (which then finds them joined). With CUDA this is mmengine's
    ``init_dist(launcher, **dist_cfg)``; the ``pytorch`` launcher on a
    machine without CUDA uses the gloo backend (mmengine's init calls
    ``torch.cuda.set_device``).
    """
    if launcher == 'none' or is_distributed():
        return
    if torch.cuda.is_available():
        init_dist(launcher, **(dist_cfg or {}))
    elif launcher == 'pytorch':
        torch.distributed.init_process_group(backend='gloo')
    else:
        raise RuntimeError(f'--launcher {launcher} needs CUDA here; on CPU '
                           'use --launcher pytorch (torchrun, gloo).')


class IncrementalExperiment:
    """All steps of one task, method and setting in one work dir.

    Args:
        cfg (Config): An experiment config (see :mod:`.plan`).
        work_dir (str): The experiment's folder ``D``.
        resume (bool): Continue a stopped experiment in ``D``: finished
            steps are kept, the current one resumes from its newest
            loadable checkpoint (or restarts from its teacher when none
            is left). Defaults to False.
        on_summary (callable, optional): Called on rank 0 as
            ``on_summary(work_dir, summary)`` after every step, once
            ``summary.json`` is written (e.g.
            :func:`mmseg_incremental.reporting.write_report`).
            Defaults to None.

    A run holds ``D/experiment.lock`` (:func:`lock_work_dir`) from start to
    end: a second run on ``D`` is refused at once, naming the holder. The
    config's ``step0_store_timeout`` (seconds, default one day) bounds the
    wait for an M_0 that another experiment is training.

    Every step's Runner gets an :class:`ExperimentProgressHook` (the
    progress over all steps in its log). After each step it trains or
    evaluates, rank 0 writes the step's metrics through the config's
    ``visualizer`` backends into ``D/vis_data`` (x = step k); a step kept
    on resume is not written again. A config naming a backend whose
    package is missing (TensorBoard) is refused before anything starts.

    Each step's ``step_done.json`` holds its wall-clock phases under
    ``timing`` (``time.perf_counter()`` seconds; one INFO line in the
    step's log too): ``build_s`` (step config and Runner), ``setup_s``,
    ``first_iter_s``, ``train_iters``, ``iter_s``, ``train_end_s`` (see
    :class:`StepTimingHook`), ``val_s`` (``runner.val()``), ``total_s``
    and ``overhead_s`` = ``total_s - train_iters * iter_s``, the step's
    fixed cost beyond its steady-state iterations. A reused M_0 has
    ``build_s``, ``val_s`` and ``total_s`` only; a step kept on resume
    keeps what it had.
    """

    def __init__(
            self,
            cfg: Config,
            work_dir: str,
            resume: bool = False,
            on_summary: Optional[Callable[[str, dict], None]] = None) -> None:
        self.cfg = cfg
        self.work_dir = osp.abspath(work_dir)
        self.resume = resume
        self.on_summary = on_summary
        self.task = experiment_task(cfg)
        store = setting_value(cfg, 'step0_store') or osp.join(
            osp.dirname(self.work_dir), 'step0_store')
        self.store = Step0Store(store)
        self.store_timeout = float(setting_value(cfg, 'step0_store_timeout'))
        self.steps: List[dict] = []
        self._planned: List[Config] = []
        self._provenance: Optional[dict] = None
        self._data_key: Optional[str] = None
        # Progress (ExperimentProgressHook, set by run()): every step's
        # iterations, the start, and the wall time and number of the
        # training iterations this process ran.
        self._step_iters: List[int] = []
        self._start = 0.0
        self._timed = (0.0, 0)

    # ------------------------------------------------------------------
    def _step_dir(self, step: int) -> str:
        return osp.join(self.work_dir, f'step_{step}')

    def _claim_work_dir(self) -> None:
        """Refuse a work dir of another config; never mix or overwrite.

        Every rank reads the work dir before rank 0 may write to it (the
        first barrier), so all ranks take the same decision.
        """
        meta = osp.join(self.work_dir, 'experiment.json')
        digest = fingerprint(experiment_fingerprint_source(self.cfg))
        steps = [
            fingerprint(step_fingerprint_source(c)) for c in self._planned
        ]
        owner = None
        if osp.isfile(meta):
            with open(meta) as f:
                owner = json.load(f)
        barrier()
        world_size = get_world_size()
        if owner is not None:
            if owner.get('world_size', world_size) != world_size:
                raise RuntimeError(
                    f'{self.work_dir} holds an experiment trained by '
                    f'{owner["world_size"]} processes; resume it with '
                    f'{owner["world_size"]} (the data order and the '
                    'per-process batch depend on it), or choose another '
                    '--work-dir (nothing was changed there).')
            changed = owner.get('fingerprint') != digest
            if changed and not self._may_continue(owner, steps):
                raise RuntimeError(
                    f'{self.work_dir} holds an experiment of another config '
                    f'({owner.get("config")}); choose another --work-dir '
                    '(nothing was changed there).')
            if not self.resume:
                raise RuntimeError(
                    f'{self.work_dir} already holds this experiment; pass '
                    '--resume to continue it, or choose another --work-dir '
                    '(nothing was overwritten).')
            if not changed:
                return
            print_log(
                f'{self.work_dir}: the config changed only in steps that '
                f'have not begun (from step {self._first_open_step()}); '
                'continuing with the new config.',
                logger='current',
                level=logging.WARNING)
        if get_rank() == 0:
            os.makedirs(self.work_dir, exist_ok=True)
            dump_json(
                meta,
                dict(
                    fingerprint=digest,
                    steps=steps,
                    config=self.cfg.filename,
                    task=self.task.to_dict(),
                    world_size=world_size))
        barrier()

    def _has_artifacts(self, step: int) -> bool:
        """Whether step ``step`` finished or saved a checkpoint (or names
        one in ``last_checkpoint``)."""
        step_dir = self._step_dir(step)
        return osp.isfile(osp.join(step_dir, DONE_FILE)) or (osp.isdir(
            step_dir) and any(
                f.endswith('.pth') or f == 'last_checkpoint'
                for f in os.listdir(step_dir)))

    def _first_open_step(self) -> int:
        """The first step with nothing finished or saved."""
        steps = list_steps(self.cfg)
        return next((k for k in steps if not self._has_artifacts(k)),
                    len(steps))

    def _may_continue(self, owner: dict, steps: List[str]) -> bool:
        """A changed config may continue the work dir (with ``--resume``) when
        every step that finished or saved a checkpoint -- and every step
        before it -- plans the same as before (a config error fixed in a
        step that has not begun)."""
        old = owner.get('steps')
        if old is None:
            return False
        begun = [k for k in range(len(steps)) if self._has_artifacts(k)]
        last = max(begun, default=-1)
        return all(k < len(old) and old[k] == steps[k]
                   for k in range(last + 1))

    # ------------------------------------------------------------------
    def _runner(self, step: int, teacher: Optional[str], **extra) -> Runner:
        step_cfg = build_step_config(self.cfg, step, self._step_dir(step),
                                     teacher)
        step_cfg.merge_from_dict(extra)
        unique_visualizer(step_cfg)
        runner = Runner.from_cfg(step_cfg)
        if get_rank() == 0:  # runs under mmseg's stock tools/train.py too
            step_cfg.dump(osp.join(self._step_dir(step), 'step_config.py'))
            # M_k alone (no teacher): mmseg's init_model, MMSegInferencer
            # and tools/test.py run it with the step's checkpoint.
            deploy_config(step_cfg).dump(
                osp.join(self._step_dir(step), 'deploy_config.py'))
        return runner

    def _resume_point(
            self, step: int,
            teacher: Optional[str]) -> Tuple[dict, Optional[Tuple[str, int]]]:
        """The Runner arguments that resume ``step`` (``{}``: train it from
        the start) and the ``(line, log level)`` that says so (None for a
        step not begun)."""
        step_dir = self._step_dir(step)
        if not self.resume or not self._has_artifacts(step):
            return dict(), None  # not begun (its memory.json may be there)
        box = [find_resume_checkpoint(step_dir) if get_rank() == 0 else None]
        broadcast_object_list(box)  # rank 0 reads, every rank resumes
        point = box[0]
        if point.checkpoint is None:
            origin = (f'its teacher M_{step - 1} ({teacher})'
                      if step else 'its initialisation')
            return dict(), (f'Step {step}: {point.problem}; no loadable '
                            'checkpoint is left, so the step restarts from '
                            f'{origin}.', logging.WARNING)
        note = (f'Step {step}: resuming from {point.checkpoint}.',
                logging.INFO)
        if point.problem:
            note = (f'Step {step}: {point.problem}; resuming from '
                    f'{point.checkpoint}, the newest loadable checkpoint of '
                    'the step.', logging.WARNING)
        # Name the checkpoint: with a load_from set, mmengine's Runner would
        # resume from load_from instead of the step's own.
        return dict(resume=True, load_from=point.checkpoint), note

    def _ensure_memory(self, step: int) -> None:
        """Choose step ``step``'s exemplar memory (``memory_size``) on rank
        0 before its datasets are built; a resumed step reuses it."""
        size = int(setting_value(self.cfg, 'memory_size'))
        if not size or step == 0:
            return
        if get_rank() == 0:
            ensure_memory(self._planned[step - 1], self.task, step,
                          self._step_dir(step), self._step_dir(step - 1),
                          size, memory_seed(self.cfg, step))
        barrier()

    def _train_step(self, step: int, teacher: Optional[str]) -> dict:
        start = time.perf_counter()
        step_dir = self._step_dir(step)
        self._ensure_memory(step)
        extra, note = self._resume_point(step, teacher)
        built = time.perf_counter()
        runner = self._runner(step, teacher, **extra)
        build_s = time.perf_counter() - built
        if note is not None:  # by the step's runner: in its log file too
            print_log(note[0], logger='current', level=note[1])
        if step == 0 and not extra:
            text, level = init_message(runner.cfg)
            print_log(text, logger='current', level=level)
        # Added to the Runner, not to step_config.py: the experiment's
        # clock is no part of a step's (reproducible) config.
        progress = ExperimentProgressHook(
            step,
            self._step_iters,
            start_time=self._start,
            timed_seconds=self._timed[0],
            timed_iters=self._timed[1])
        runner.register_hook(progress)
        timer = StepTimingHook()
        runner.register_hook(timer)
        train_start = timer.clock()
        runner.train()
        train_end = timer.clock()
        self._timed = (progress.timed_seconds, progress.timed_iters)
        metrics = runner.val()
        val_s = timer.clock() - train_end
        shutdown_runner_workers(runner)
        iters = runner.train_loop.max_iters
        checkpoint = osp.join(step_dir, f'iter_{iters}.pth')
        if get_rank() == 0 and not osp.isfile(checkpoint):
            raise RuntimeError(
                f'Step {step} finished without {checkpoint}; keep the '
                "default CheckpointHook's save_last=True.")
        timing = dict(
            build_s=build_s,
            **timer.phases(train_start, train_end),
            val_s=val_s,
            total_s=time.perf_counter() - start)
        timing['overhead_s'] = fixed_overhead(timing['total_s'],
                                              timing['train_iters'],
                                              timing['iter_s'],
                                              timing['first_iter_s'])
        print_log(format_step_timing(step, timing), logger='current')
        return dict(checkpoint=checkpoint, metrics=metrics, timing=timing)

    def _reuse_step0(self, stored: str) -> dict:
        start = time.perf_counter()
        print_log(
            f'Reusing M_0 from {stored} (same model, step-0 data content '
            'and schedule; checksum verified); evaluating it on this '
            'experiment\'s split.',
            logger='current')
        runner = self._runner(0, None, load_from=stored)
        built = time.perf_counter()
        metrics = runner.val()
        end = time.perf_counter()
        shutdown_runner_workers(runner)
        timing = dict(
            build_s=built - start, val_s=end - built, total_s=end - start)
        print_log(format_step_timing(0, timing), logger='current')
        return dict(
            checkpoint=stored, metrics=metrics, reused=True, timing=timing)

    def _run_step(self, step: int, teacher: Optional[str]) -> dict:
        done_file = osp.join(self._step_dir(step), DONE_FILE)
        if osp.isfile(done_file):
            try:
                return read_json(done_file, f'step {step} result')
            except DamagedFile as damaged:  # the step's checkpoints remain
                print_log(
                    f'{damaged} The step is resumed from its checkpoints '
                    'and its result written again.',
                    logger='current',
                    level=logging.WARNING)
        if step > 0:
            result = self._train_step(step, teacher)
        else:
            source = step0_fingerprint_source(self.cfg, self._data_key)
            with self.store.reserve(source, self.store_timeout) as stored:
                if stored is not None:
                    result = self._reuse_step0(stored)
                else:
                    result = self._train_step(step, teacher)
                    if get_rank() == 0:
                        self.store.publish(source, result['checkpoint'])
        result['step'] = step
        if get_rank() == 0:
            os.makedirs(self._step_dir(step), exist_ok=True)
            dump_json(done_file, result)
        barrier()  # every rank sees M_k before step k+1 loads it
        return result

    def run(self) -> Dict:
        """Run (or resume) every step; returns the summary dict."""
        check_vis_backends(self.cfg)  # before the work dir is touched
        # Every step's config and datasets, before anything trains.
        self._planned = check_plan(self.cfg, self.work_dir)
        # The step-0 data's content key, read once: provenance and the
        # step-0 store's key.
        self._data_key = data_content_key(self._planned[0].train_dataloader)
        self._provenance = provenance(self.cfg, self._data_key)
        self._step_iters = [
            step_iters(self.cfg, self.task, k) for k in list_steps(self.cfg)
        ]
        self._start = time.monotonic()
        self._timed = (0.0, 0)
        lock = lock_work_dir(self.work_dir)
        try:
            with catch_preemption():
                return self._run_steps()
        finally:
            if lock is not None:
                lock.release()

    def _run_steps(self) -> Dict:
        self._claim_work_dir()
        # Built before any step's Runner: mmseg's hooks take the newest
        # visualizer as theirs (Visualizer.get_current_instance()).
        visualizer = experiment_visualizer(
            self.cfg, self.work_dir) if get_rank() == 0 else None
        try:
            return self._steps(visualizer)
        finally:
            if visualizer is not None:
                visualizer.close()

    def _steps(self, visualizer) -> Dict:
        teacher = None
        summary = None
        for step in list_steps(self.cfg):
            kept = osp.isfile(osp.join(self._step_dir(step), DONE_FILE))
            result = self._run_step(step, teacher)
            teacher = result['checkpoint']
            self.steps.append(
                metrics_to_summary(self.task, step, result['metrics']))
            if get_rank() == 0:
                summary = write_summary(self.work_dir, self.cfg, self.task,
                                        self.steps, self._provenance)
                if not kept:  # a resumed run wrote it already
                    log_step_metrics(visualizer, self.steps[-1])
                if self.on_summary is not None:
                    self.on_summary(self.work_dir, summary)
            signal_name = agreed_preemption()
            if signal_name is not None and step != list_steps(self.cfg)[-1]:
                # Arrived outside the training iterations (validation, a
                # reused M_0): step k is complete, k+1 not begun.
                text = (f'{signal_name} received: stopped after step {step} '
                        '(complete); run again with --resume to continue.')
                print_log(text, logger='current', level=logging.WARNING)
                raise Preempted(text)
        barrier()
        return summary
