"""Shared helpers of the experiment tests: tiny configs, JSON reading."""
import json
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config
from mmengine.hooks import Hook

from mmseg.registry import HOOKS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(ROOT, 'configs', 'embedded')
#: ``--cfg-options`` of a two-step experiment in seconds (32 px, batch 4).
TINY = {
    'iters_per_class': 1,
    'max_step': 1,
    'total_batch_size': 4,
    'model.data_preprocessor.size': (32, 32),
    'default_hooks.logger.interval': 1,
}


def tiny_cfg(name, data_root, **overrides):
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    opts = {
        'iters_per_class': 1,
        'total_batch_size': 4,
        'data_root': data_root,
        'model.data_preprocessor.size': (32, 32),
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.logger.interval': 1,
    }
    opts.update(overrides)
    cfg.merge_from_dict(opts)
    return cfg


def load(path):
    with open(path) as f:
        return json.load(f)


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` in a fresh interpreter with the repository on
    the path; stdout/stderr captured as text."""
    return subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', tool), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))


class Killed(Exception):
    """Raised by :class:`KillAtIterHook` (an in-process 'kill')."""


@HOOKS.register_module(force=True)
class KillAtIterHook(Hook):
    """Stops training after iteration ``at_iter`` of the step whose work dir
    ends with ``step_dir``, once the checkpoint of that iteration exists."""

    priority = 'LOWEST'  # after CheckpointHook

    def __init__(self, step_dir: str, at_iter: int) -> None:
        self.step_dir = step_dir
        self.at_iter = at_iter

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if runner.work_dir.endswith(self.step_dir) and \
                runner.iter + 1 == self.at_iter:
            raise Killed(f'killed at iteration {self.at_iter}')
