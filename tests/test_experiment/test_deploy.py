"""Each step writes a plain EncoderDecoder config beside its checkpoint:
mmseg's own APIs and tools/test.py run it from the step folder alone."""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import mmseg
import numpy as np
import torch
from mmengine.config import Config

from mmseg_incremental.experiment import IncrementalExperiment
from test_experiment.utils import ROOT, TOOL_TIMEOUT_S, load, tiny_cfg


def test_step_folder_deploys_alone(embedded_voc, step0_store, tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ef-ld.py',
        embedded_voc,
        max_step=1,
        step0_store=step0_store)
    IncrementalExperiment(cfg, str(tmp_path / 'run')).run()
    done = load(tmp_path / 'run' / 'step_1' / 'step_done.json')
    # The step folder alone, elsewhere (no teacher, no step_0 beside it).
    moved = tmp_path / 'elsewhere' / 'step_1'
    shutil.copytree(tmp_path / 'run' / 'step_1', moved)
    shutil.rmtree(tmp_path / 'run')
    config = str(moved / 'deploy_config.py')
    ckpt = str(moved / osp.basename(done['checkpoint']))
    deploy = Config.fromfile(config)
    assert deploy.model.type == 'EncoderDecoder'
    assert 'teacher_checkpoint' not in deploy.model
    assert deploy.model.decode_head.num_classes == 17

    from mmseg.apis import MMSegInferencer, inference_model, init_model
    model = init_model(config, ckpt, device='cpu')
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    image = np.random.default_rng(0).integers(
        0, 255, (32, 32, 3), dtype=np.uint8)
    result = inference_model(model, image)
    pred = result.pred_sem_seg.data
    assert pred.shape == (1, 32, 32) and int(pred.max()) < 17
    inferencer = MMSegInferencer(model=config, weights=ckpt, device='cpu')
    out = inferencer(image, return_datasamples=True)
    assert torch.equal(out.pred_sem_seg.data, pred)

    # mmseg's stock tools/test.py reproduces the step's own evaluation.
    test = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    proc = subprocess.run([
        sys.executable, test, config, ckpt, '--work-dir',
        str(tmp_path / 'test')
    ],
                          capture_output=True,
                          text=True,
                          timeout=TOOL_TIMEOUT_S,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    miou = float(re.findall(r'mIoU: ([0-9.]+)', proc.stdout + proc.stderr)[-1])
    assert miou == done['metrics']['mIoU']
