"""A pretrained backbone for the embedded benchmark (its "MSCOCO").

The paper's M_0 does not start from scratch: the authors initialise
DeepLab-v2 from its MSCOCO-pretrained weights, and MSCOCO holds all 20 VOC
classes, so the encoder that EF freezes already knows features of the
classes that arrive later. A tiny network trained from scratch on the 16
classes of S_0 does not: under EF its decoder cannot separate a new class
from the old ones, and the demo showed forgetting but hardly any learning.

:func:`pretrain_backbone` gives the embedded benchmark the same start: it
generates a *second* benchmark (another seed: other images, the same 21
classes), trains the tiny model jointly on all of it once, and writes the
backbone's weights as a plain state dict for the experiments'
``pretrained``. The incremental runs never see an image of it; as in the
paper, the step-0 store keys M_0 by that file's content.
"""
import argparse
import json
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.logging import print_log

from ..synthetic_voc import generate_benchmark
from .run_methods import run_methods

#: Seed of the pretraining benchmark (the incremental one uses 0).
PRETRAIN_SEED = 1


def pretrain_backbone(config: str,
                      work_dir: str,
                      data_root: Optional[str] = None,
                      iters_per_class: int = 100,
                      num_train: int = 1500,
                      image_size: int = 64,
                      cfg_options: Optional[dict] = None) -> str:
    """Train ``config``'s model jointly on a second benchmark; return the
    path of its backbone weights (``<work_dir>/backbone.pth``).

    Idempotent: a finished pretraining is reused, an interrupted one
    resumes (the run is an ordinary one-step experiment, ``task='joint'``).

    Args:
        config (str): An embedded-benchmark experiment config (its model
            and schedule shape are used; the method does not matter).
        work_dir (str): Where the pretraining run and the weights go.
        data_root (str, optional): The pretraining benchmark's folder;
            defaults to ``<work_dir>/data`` (generated with
            :data:`PRETRAIN_SEED`).
        iters_per_class (int): Joint training length: 21 x this many
            iterations. Defaults to 100.
        num_train (int): Training images of the pretraining benchmark.
            Defaults to 1500.
        image_size (int): Its image side. Defaults to 64 (the demo's).
        cfg_options (dict, optional): Further overrides of ``config``
            (tests: a smaller input). Defaults to None.

    Returns:
        str: The backbone state dict's path.
    """
    data_root = data_root or osp.join(work_dir, 'data')
    generate_benchmark(
        data_root,
        num_train=num_train,
        image_size=image_size,
        seed=PRETRAIN_SEED)
    [run_dir] = run_methods([config],
                            work_dir,
                            data_root,
                            cfg_options=dict(
                                cfg_options or {},
                                task='joint',
                                max_step=0,
                                method='pretraining (joint)',
                                iters_per_class=iters_per_class,
                                pretrained=None))
    with open(osp.join(run_dir, 'step_0', 'step_done.json')) as f:
        done = json.load(f)
    out = osp.join(work_dir, 'backbone.pth')
    source = osp.join(work_dir, 'backbone.json')
    if osp.isfile(out) and osp.isfile(source):
        with open(source) as f:
            if json.load(f).get('checkpoint') == done['checkpoint']:
                return out
    state = torch.load(done['checkpoint'], map_location='cpu')
    backbone = {
        k[len('backbone.'):]: v
        for k, v in state['state_dict'].items() if k.startswith('backbone.')
    }
    tmp = out + '.tmp'
    torch.save(backbone, tmp)
    os.replace(tmp, out)
    with open(source, 'w') as f:
        json.dump(
            dict(
                checkpoint=done['checkpoint'],
                mIoU=done.get('metrics', {}).get('mIoU')), f)
    print_log(
        f'Pretrained backbone: {out} (joint mIoU on the pretraining '
        f'benchmark: {done.get("metrics", {}).get("mIoU")})',
        logger='current')
    return out


def add_benchmark_arguments(parser: argparse.ArgumentParser,
                            iters_per_class: int,
                            iters_per_class_incremental: int) -> None:
    """The schedule options shared by the embedded-benchmark drivers
    (``tools/demo.py``, ``tools/paper_findings.py``,
    ``tools/mib_plop_table.py``)."""
    parser.add_argument('--iters-per-class', type=int, default=iters_per_class)
    parser.add_argument(
        '--iters-per-class-incremental',
        type=int,
        default=iters_per_class_incremental,
        help='iterations per new class at steps k >= 1')
    parser.add_argument(
        '--pretrain-iters-per-class',
        type=int,
        default=100,
        help='joint pretraining of the backbone on a second benchmark '
        '(21 x this many iterations); 0: M_0 from random weights')
    parser.add_argument(
        '--pretrain-dir',
        default='work_dirs/pretrain_embedded',
        help='where the pretraining runs (shared by the drivers: done once)')


def benchmark_options(args: argparse.Namespace, config: str) -> dict:
    """The ``cfg_options`` of a driver run: its schedule, the authors'
    incremental lr horizon (20x the step, codes/LD1) and the pretrained
    backbone (trained here on first use)."""
    options = dict(
        iters_per_class=args.iters_per_class,
        iters_per_class_incremental=args.iters_per_class_incremental,
        lr_decay_horizon=20)
    if args.pretrain_iters_per_class:
        options['pretrained'] = pretrain_backbone(
            config,
            args.pretrain_dir,
            iters_per_class=args.pretrain_iters_per_class)
    return options
