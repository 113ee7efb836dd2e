"""The proof of the term design: a new method defined in this file alone.

A toy distillation term (the mean logit of every old class matched to the
teacher's, its weight ramped up by a hook of its own) is registered here,
declares its hook, and trains two steps through
``tools/train_incremental.py`` (``custom_imports`` names this module, as a
user's project would name its own). The run is SIGKILLed in step 1 and
resumed; it ends with the metrics of an uninterrupted run, and the step
deploys as a stock ``EncoderDecoder``. No package file knows the term.
docs/adding_a_method.md walks the same path.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
from typing import Dict

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from torch import Tensor

from mmseg.registry import HOOKS, MODELS
from mmseg_incremental.models.terms import DistillBatch, DistillTerm

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
MODULE = osp.splitext(osp.basename(__file__))[0]


# --- the new method: one term and its hook ---------------------------------
@MODELS.register_module(force=True)
class MeanLogitTerm(DistillTerm):
    """Toy term: squared distance between the student's and the teacher's
    per-class mean logits over the old classes, times ``loss_weight`` and
    the hook's ramp."""

    teacher_needs = frozenset({'logits'})
    training_hooks = ('MeanLogitRampHook', )

    def __init__(self, loss_weight: float = 1.0, ramp_iters: int = 2) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.ramp_iters = int(ramp_iters)
        self.ramp = 0.0  # set by MeanLogitRampHook before each iteration

    def loss(self, model, batch: DistillBatch) -> Dict[str, Tensor]:
        old = model.num_old_classes
        student = batch.seg_logits[:, :old].mean(dim=(0, 2, 3))
        teacher = model.old_logits(batch.teacher.logits).mean(dim=(0, 2, 3))
        value = ((student - teacher)**2).mean()
        return {'loss_mean_logit': self.loss_weight * self.ramp * value}


@HOOKS.register_module(force=True)
class MeanLogitRampHook(Hook):
    """Ramps every ``MeanLogitTerm`` linearly from 1/ramp_iters to 1 over
    its first ``ramp_iters`` iterations (a function of the iteration, so a
    resumed step ramps as an uninterrupted one)."""

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        model = runner.model.module if hasattr(runner.model,
                                               'module') else runner.model
        for term in model.terms_of_type(MeanLogitTerm):
            term.ramp = min(1.0, (runner.iter + 1) / term.ramp_iters)


@HOOKS.register_module(force=True)
class KillAfterIterHook(Hook):
    """Test fault: SIGKILL after iteration ``at_iter`` of ``step_dir``,
    once every other hook (the checkpoint's) has run."""

    priority = 'LOWEST'

    def __init__(self, step_dir: str, at_iter: int) -> None:
        self.step_dir, self.at_iter = step_dir, at_iter

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if runner.work_dir.endswith(self.step_dir) and \
                runner.iter + 1 == self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)


# --- the test ---------------------------------------------------------------
LEAF = """_base_ = ['{root}/configs/embedded/bench_15-1_ft.py']
custom_imports = dict(imports=['{module}'], allow_failed_imports=False)
method = 'mean-logit'
incremental = dict(
    distill_terms=dict(
        mean_logit=dict(type='MeanLogitTerm', loss_weight=5.0,
                        ramp_iters=3)))
"""


def _run(config,
         work_dir,
         data_root,
         store,
         *extra,
         fault=None,
         expect_kill=False):
    options = [
        'iters_per_class=1', 'iters_per_class_incremental=4', 'max_step=1',
        'total_batch_size=4', f'data_root={data_root}', f'step0_store={store}',
        'model.data_preprocessor.size=(32,32)',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1'
    ]
    for key, value in (fault or {}).items():
        options.append(f'default_hooks.fault.{key}={value}')
    proc = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools', 'train_incremental.py'),
        str(config), '--work-dir',
        str(work_dir), *extra, '--cfg-options', *options
    ],
                          capture_output=True,
                          text=True,
                          timeout=600,
                          env=dict(
                              os.environ,
                              PYTHONPATH=os.pathsep.join([ROOT, HERE]),
                              OMP_NUM_THREADS='1'))
    output = (proc.stdout + proc.stderr)[-4000:]
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, output
    else:
        assert proc.returncode == 0, output
    return output


def _steps(work_dir):
    with open(osp.join(work_dir, 'summary.json')) as f:
        return json.load(f)['steps']


def test_a_method_defined_in_a_test_file(embedded_voc, tmp_path):
    config = tmp_path / 'mean_logit.py'
    config.write_text(LEAF.format(root=ROOT, module=MODULE))
    store = tmp_path / 'store'

    # Uninterrupted: two steps, the term's loss logged, its hook planned.
    _run(config, tmp_path / 'full', embedded_voc, store)
    step_cfg = Config.fromfile(
        str(tmp_path / 'full' / 'step_1' / 'step_config.py'))
    assert step_cfg.model.type == 'IncrementalEncoderDecoder'
    assert step_cfg.model.distill_terms.mean_logit.type == 'MeanLogitTerm'
    hooks = [h['type'] for h in step_cfg.custom_hooks]
    assert hooks.count('MeanLogitRampHook') == 1
    log = _scalars(tmp_path / 'full' / 'step_1')
    values = [r['distill.loss_mean_logit'] for r in log]
    # The ramp (1/3, 2/3, 1, 1) times a positive distance: all > 0 and the
    # loss term is part of the total.
    assert len(values) == 4 and all(v > 0 for v in values)
    for record in log:
        parts = sum(v for k, v in record.items()
                    if k.split('.')[-1].startswith('loss_'))
        assert record['loss'] == pytest.approx(parts, rel=1e-4)
    full = _steps(tmp_path / 'full')
    assert [s['step'] for s in full] == [0, 1]

    # SIGKILL after step 1's second iteration, then --resume.
    killed = tmp_path / 'killed'
    _run(
        config,
        killed,
        embedded_voc,
        store,
        fault=dict(type='KillAfterIterHook', step_dir='step_1', at_iter=2),
        expect_kill=True)
    assert not osp.exists(killed / 'summary.json') or \
        len(_steps(killed)) < 2
    _run(config, killed, embedded_voc, store, '--resume')
    assert _steps(killed) == full

    # The step deploys: a stock EncoderDecoder, without the term or its
    # hook, that loads the step's checkpoint strictly.
    deploy = Config.fromfile(
        str(tmp_path / 'full' / 'step_1' / 'deploy_config.py'))
    assert deploy.model.type == 'EncoderDecoder'
    assert 'distill_terms' not in deploy.model
    assert 'MeanLogitRampHook' not in [
        h['type'] for h in deploy.get('custom_hooks', [])
    ]
    from mmseg.apis import init_model
    done = json.load(open(tmp_path / 'full' / 'step_1' / 'step_done.json'))
    ckpt = osp.join(tmp_path / 'full' / 'step_1',
                    osp.basename(done['checkpoint']))
    model = init_model(deploy, ckpt, device='cpu')
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    assert set(model.state_dict()) == set(state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def _scalars(step_dir):
    """The training records of a step's ``scalars.json`` (mmengine's
    visualizer backend), in iteration order."""
    found = []
    for root, _, files in os.walk(step_dir):
        for name in files:
            if name == 'scalars.json':
                with open(osp.join(root, name)) as f:
                    found += [json.loads(line) for line in f if line.strip()]
    return [r for r in found if 'loss' in r]
