"""Shared helpers of the experiment tests: tiny configs, JSON reading, the
tools run in this process or in a fresh one, an independent mIoU."""
import contextlib
import io
import json
import os
import os.path as osp
import runpy
import subprocess
import sys
from typing import Optional
from unittest import mock

import numpy as np
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS, HOOKS

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


def state_dict(checkpoint: str) -> dict:
    """A checkpoint's ``state_dict`` (a step's ``iter_N.pth`` or a store's
    ``M0.pth``)."""
    import torch
    return torch.load(checkpoint, map_location='cpu')['state_dict']


def assert_same_weights(checkpoint: str, expected: str) -> None:
    """The two checkpoints hold the same tensors, bit for bit."""
    import torch
    got, want = state_dict(checkpoint), state_dict(expected)
    assert got.keys() == want.keys(), (checkpoint, expected)
    for key, value in want.items():
        assert torch.equal(got[key], value), (key, checkpoint, expected)


#: Seconds a tool run in a fresh interpreter may take (a guard against a
#: hung child: the tools the tests run take seconds).
TOOL_TIMEOUT_S = 120


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` in a fresh interpreter with the repository on
    the path; stdout/stderr captured as text. For the tests of what a
    fresh process does; :func:`call_tool` otherwise."""
    return subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', tool), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        env=dict(os.environ, PYTHONPATH=ROOT))


def call_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` as ``__main__`` in this process, as
    :func:`run_tool` does in a fresh one (same result: its exit status,
    the text it printed to stdout and stderr), without the interpreter's
    and the imports' start-up. The environment is restored afterwards."""
    argv = [osp.join(ROOT, 'tools', tool), *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with mock.patch.object(sys, 'argv', argv), \
            mock.patch.dict(os.environ), \
            contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            runpy.run_path(argv[0], run_name='__main__')
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else \
                int(exit_.code is not None)
    return subprocess.CompletedProcess(argv, code, out.getvalue(),
                                       err.getvalue())


def accumulate_iou(inter: np.ndarray, union: np.ndarray, pred: np.ndarray,
                   label: np.ndarray) -> None:
    """Add one image's per-class intersection and union (255 ignored)."""
    keep = label != 255
    for c in range(len(inter)):
        p, t = (pred == c) & keep, (label == c) & keep
        inter[c] += (p & t).sum()
        union[c] += (p | t).sum()


def miou_percent(inter: np.ndarray, union: np.ndarray) -> float:
    """mIoU (%) over the classes present in labels or predictions."""
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return 100 * np.nanmean(iou)


def deployed_step(step_dir: str, checkpoint: str,
                  protocol: Optional[str] = None):
    """The step's validation dataset (under ``protocol``, else its own)
    and M_k built from its ``deploy_config.py`` by mmseg's ``init_model``."""
    from mmseg.apis import init_model
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(step_dir, 'deploy_config.py'))
    ds_cfg = cfg.val_dataloader.dataset
    if protocol is not None:
        ds_cfg['eval_protocol'] = protocol
    return DATASETS.build(ds_cfg), init_model(cfg, checkpoint, device='cpu')


def independent_miou(step_dir: str, checkpoint: str, protocol: str):
    """mIoU (%) of a step's checkpoint on the step's val split under
    ``protocol``, computed apart from the experiment's evaluation: labels
    from the dataset's label map, predictions from mmseg's ``init_model``
    and ``inference_model`` one image at a time on the step's
    ``deploy_config.py``, IoU by numpy over the classes present in labels
    or predictions. Returns ``(mIoU, number of images)``."""
    from mmseg.apis import inference_model
    dataset, model = deployed_step(step_dir, checkpoint, protocol)
    n = len(dataset.metainfo['classes'])
    inter, union = np.zeros(n), np.zeros(n)
    for i in range(len(dataset)):
        item = dataset[i]
        label = item['data_samples'].gt_sem_seg.data[0].numpy()
        pred = inference_model(
            model, item['data_samples'].img_path).pred_sem_seg.data[0].numpy()
        accumulate_iou(inter, union, pred, label)
    return miou_percent(inter, union), len(dataset)


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


def independent_crop_miou(step_dir: str, checkpoint: str, size: int):
    """mIoU (%) of a step's checkpoint on MiB / PLOP's evaluation view,
    computed apart from the experiment: each whole image and label (the
    dataset's label map) resized by hand (short side to ``size``: image
    bilinear with cv2, label nearest with PIL as MiB) and centre-cropped,
    predicted by mmseg's ``inference_model``, IoU by numpy. ``step_dir``'s
    deploy config must evaluate whole images."""
    import cv2
    from PIL import Image
    from mmseg.apis import inference_model
    dataset, model = deployed_step(step_dir, checkpoint)
    n = len(dataset.metainfo['classes'])
    inter, union = np.zeros(n), np.zeros(n)

    def view(array, resize):
        h, w = array.shape[:2]
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        array = resize(array, nh, nw)
        top, left = (nh - size) // 2, (nw - size) // 2
        return array[top:top + size, left:left + size]

    def pil_nearest(label, nh, nw):  # as MiB / PLOP resize labels
        return np.asarray(
            Image.fromarray(label.astype(np.uint8)).resize((nw, nh),
                                                           Image.NEAREST))

    def cv2_bilinear(img, nh, nw):
        return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)

    for i in range(len(dataset)):
        item = dataset[i]
        label = view(item['data_samples'].gt_sem_seg.data[0].numpy(),
                     pil_nearest)
        image = view(cv2.imread(item['data_samples'].img_path),
                     cv2_bilinear)
        pred = inference_model(model, image).pred_sem_seg.data[0].numpy()
        assert pred.shape == label.shape == (size, size)
        accumulate_iou(inter, union, pred, label)
    return miou_percent(inter, union)
