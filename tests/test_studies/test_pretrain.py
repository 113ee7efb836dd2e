"""The embedded benchmark's pretrained backbone (its "MSCOCO")."""
import os
import os.path as osp

import torch

from mmseg_incremental.planning import file_sha256
from mmseg_incremental.studies.pretrain import pretrain_backbone
from test_experiment.utils import CFG_DIR, load

SMALL = {
    'total_batch_size': 4,
    'model.data_preprocessor.size': (32, 32),
    'default_hooks.checkpoint.interval': 100,
}


def test_pretrain_writes_the_joint_models_backbone_once(tmp_path):
    work = str(tmp_path / 'pretrain')
    path = pretrain_backbone(
        osp.join(CFG_DIR, 'bench_15-1_ft.py'),
        work,
        iters_per_class=1,
        num_train=120,
        image_size=32,
        cfg_options=SMALL)
    run = osp.join(work, 'bench_15-1_ft')
    done = load(osp.join(run, 'step_0', 'step_done.json'))
    summary = load(osp.join(run, 'summary.json'))
    # One joint step over all 21 classes of a second benchmark (seed 1).
    assert summary['task_steps'] == [list(range(21))]
    assert done['checkpoint'].endswith('iter_21.pth')
    assert load(osp.join(work, 'data',
                         'benchmark.json'))['parameters']['seed'] == 1
    # The file is the trained model's backbone, key for key, value for value.
    backbone = torch.load(path)
    state = torch.load(done['checkpoint'])['state_dict']
    expected = {
        k[len('backbone.'):]: v
        for k, v in state.items() if k.startswith('backbone.')
    }
    assert set(backbone) == set(expected) and len(backbone) > 20
    for key, value in expected.items():
        assert torch.equal(backbone[key], value), key
    # A second call reuses it: nothing retrained or rewritten.
    mtime, digest = os.stat(path).st_mtime_ns, file_sha256(path)
    assert pretrain_backbone(
        osp.join(CFG_DIR, 'bench_15-1_ft.py'),
        work,
        iters_per_class=1,
        num_train=120,
        image_size=32,
        cfg_options=SMALL) == path
    assert os.stat(path).st_mtime_ns == mtime and file_sha256(path) == digest
