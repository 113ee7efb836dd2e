"""A 2-step experiment in 2 processes (torchrun, gloo on CPU)."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WAIT_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('nodes', [1, 2], ids=['one_node', 'two_nodes'])
def test_two_process_experiment(embedded_voc, tmp_path, nodes):
    """Two processes: one torchrun launch of 2, or two launches of 1 that
    form two "nodes" on 127.0.0.1 (``--nnodes 2 --node_rank k``, as a
    multi-node SLURM job starts one launcher per node)."""
    work_dir = tmp_path / 'ddp'
    port = _free_port()
    launcher = [
        sys.executable, '-m', 'torch.distributed.run',
        f'--nproc_per_node={2 // nodes}', f'--nnodes={nodes}',
        '--master_addr=127.0.0.1', f'--master_port={port}'
    ]
    args = [
        osp.join(ROOT, 'tools', 'train_incremental.py'),
        osp.join(ROOT, 'configs', 'embedded',
                 'bench_15-1_ef-ld.py'), '--launcher', 'pytorch', '--work-dir',
        str(work_dir), '--cfg-options', 'max_step=1', 'iters_per_class=2',
        'total_batch_size=4', f'data_root={embedded_voc}',
        'model.data_preprocessor.size=(32,32)',
        f'step0_store={tmp_path / "store"}'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    other = None
    if nodes == 2:  # node 1 first; node 0 below holds the master
        other = subprocess.Popen(
            launcher + ['--node_rank=1'] + args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True)
        launcher = launcher + ['--node_rank=0']
    try:  # ~25 s on 2 busy cores; a guard against a hung rank
        proc = subprocess.run(
            launcher + args,
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT_S)
        if other is not None:
            other_out, _ = other.communicate(timeout=WAIT_S)
            assert other.returncode == 0, _failure(other_out)
    except subprocess.TimeoutExpired as hung:
        out = (hung.stdout or b'') + (hung.stderr or b'')
        if isinstance(out, bytes):
            out = out.decode(errors='replace')
        pytest.fail(f'torchrun did not finish within {WAIT_S} s:\n' +
                    _failure(out))
    finally:
        if other is not None and other.poll() is None:
            other.kill()
    assert proc.returncode == 0, _failure(proc.stdout + proc.stderr)
    with open(work_dir / 'summary.json') as f:
        summary = json.load(f)
    assert [s['step'] for s in summary['steps']] == [0, 1]
    assert summary['method'] == "EF+L'_D"
    # EF: step 1's encoder is bit-identical to M_0's, under DDP too.
    m0 = torch.load(summary_ckpt(work_dir, 0), map_location='cpu')
    m1 = torch.load(summary_ckpt(work_dir, 1), map_location='cpu')
    for key, value in m0['state_dict'].items():
        if key.startswith('backbone.'):
            assert torch.equal(value, m1['state_dict'][key]), key
    # mmengine's environment log: really 2 ranks, really distributed.
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    # The total batch of 4 is split over the 2 ranks, and recorded.
    for step in (0, 1):
        step_cfg = Config.fromfile(
            str(work_dir / f'step_{step}' / 'step_config.py'))
        assert step_cfg.train_dataloader.batch_size == 2
    with open(work_dir / 'experiment.json') as f:
        assert json.load(f)['world_size'] == 2


def summary_ckpt(work_dir, step):
    with open(work_dir / f'step_{step}' / 'step_done.json') as f:
        return json.load(f)['checkpoint']


def _failure(log: str) -> str:
    """The ranks' own tracebacks, not only torchrun's summary."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if 'Traceback' in line]
    return '\n'.join(lines[starts[0]:starts[0] +
                           60] if starts else lines[-60:])
