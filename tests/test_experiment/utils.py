"""Shared helpers of the experiment tests: tiny configs, JSON reading."""
import json
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

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
