"""Every shipped config loads and plans every step of its task."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmseg.registry import MODELS

import mmseg
import mmseg_incremental  # noqa: F401
from mmseg_incremental.experiment import (build_step_config, experiment_task,
                                          list_steps)
from mmseg_incremental.experiment.summary import method_name
from test_experiment.utils import TOOL_TIMEOUT_S, assert_same_weights

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', 'il', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'il', 'ours', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'embedded', '*.py')))
PAPER_ROWS = {
    'ft': 'FT',
    'ld': "L'_D",
    'ef': 'EF',
    'ef-ld': "EF+L'_D",
    'fd': "L''_D",
    'ld-fd': "L'_D+L''_D",
    'm0': 'M0'
}


def test_every_paper_row_is_shipped():
    names = {osp.basename(p)[:-3] for p in CONFIGS}
    for task, rows in {
            '19-1': ['ft', 'ld', 'ef', 'ef-ld', 'fd', 'ld-fd'],
            '15-5': ['ft', 'ld', 'ef-ld', 'fd'],
            '15-1': ['ft', 'ld', 'ef-ld', 'fd']
    }.items():
        for row in rows:
            assert f'voc_{task}_{row}' in names
            assert osp.isfile(
                osp.join(ROOT, 'configs', 'il', 'ours',
                         f'voc_{task}_{row}.py'))
        for setting in ('disjoint', 'overlapped'):
            assert f'voc_{task}_mib-{setting}_ilt' in names
    assert {
        'voc_joint', 'voc_19-1_m0', 'voc_15-5_m0', 'ade_100-50_ld',
        'ade_100-10_ld', 'ade_50-50_ld'
    } <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_plans_every_step(path):
    cfg = Config.fromfile(path)
    task = experiment_task(cfg)
    name = osp.basename(path)[:-3]
    row = name.rsplit('_', 1)[-1]
    if row in PAPER_ROWS and 'mib' not in name:
        assert method_name(cfg) == PAPER_ROWS[row]
    if 'mib' in name:
        assert cfg.setting in name
    for step in list_steps(cfg):
        step_cfg = build_step_config(cfg, step, 'w',
                                     None if step == 0 else 'prev.pth')
        last = step if cfg.get('classifier', 'grow') == 'grow' \
            else task.num_steps - 1
        assert step_cfg.model.decode_head.num_classes == \
            task.num_classes(last)
        ds = step_cfg.train_dataloader.dataset
        assert (ds.task, ds.step) == (cfg.task, step)
        iters = cfg.iters_per_class * len(task.new_classes(step))
        assert step_cfg.train_cfg.max_iters == iters
        horizon = cfg.get('lr_decay_horizon', 1) if step else 1
        assert step_cfg.param_scheduler[0].end == horizon * iters
        if step > 0:
            assert step_cfg.model.type == 'IncrementalEncoderDecoder'
            for term in (step_cfg.model.get('distill_terms') or {}).values():
                MODELS.build(term)  # arguments valid


def test_paper_schedule_values():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/il/voc_19-1_ld.py'))
    s0 = build_step_config(cfg, 0, 'w')
    s1 = build_step_config(cfg, 1, 'w', 'prev.pth')
    assert s0.train_cfg.max_iters == 20000 and s1.train_cfg.max_iters == 1000
    assert s0.optim_wrapper.optimizer.lr == 1e-4
    assert s1.optim_wrapper.optimizer.lr == 5e-5
    assert s1.param_scheduler[0].eta_min == 1e-6
    assert s0.optim_wrapper.optimizer.momentum == 0.9
    assert s0.optim_wrapper.optimizer.weight_decay == 1e-4
    assert s0.train_dataloader.batch_size == 4
    assert s0.crop_size == (321, 321)
    output = s1.model.distill_terms.output
    assert (output.type, output.variant, output.pixel_mask,
            output.loss_weight) == ('OutputDistillTerm', 'ilt', 'old', 1.0)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/il/voc_15-1_fd.py'))
    terms = build_step_config(cfg, 3, 'w', 'p').model.distill_terms
    assert list(terms) == ['feature']
    assert terms.feature.loss_weight == 50.0


@pytest.mark.parametrize('row', ['ft', 'ld', 'ef-ld', 'fd'])
@pytest.mark.parametrize('task', ['19-1', '15-5', '15-1'])
def test_paper_rows_take_the_authors_values(task, row):
    """configs/il/voc_* run as the authors' code; configs/il/ours/voc_*
    keep this plugin's defaults (docs/methods.md, "The authors' code ...")."""
    for flavour, path in (('authors', f'configs/il/voc_{task}_{row}.py'),
                          ('ours', f'configs/il/ours/voc_{task}_{row}.py')):
        cfg = Config.fromfile(osp.join(ROOT, path))
        authors = flavour == 'authors'
        s0 = build_step_config(cfg, 0, 'w')
        s1 = build_step_config(cfg, 1, 'w', 'prev.pth')
        # (c) 21 outputs from step 0, or |S_k|.
        s0_classes = int(task.split('-')[0]) + 1  # with background
        assert s0.model.decode_head.num_classes == (21
                                                    if authors else s0_classes)
        # (d) LD1/EF scripts: the poly spans 20x the step; LD2 (L''_D): 1x.
        horizon = 20 if authors and row != 'fd' else 1
        assert s1.param_scheduler[0].end == horizon * s1.train_cfg.max_iters
        assert s0.param_scheduler[0].end == s0.train_cfg.max_iters
        # (a) L'_D on upsampled logits.
        if row in ('ld', 'ef-ld'):
            output = s1.model.distill_terms.output
            assert output.get('resolution', 'logits') == \
                ('labels' if authors else 'logits')
        # (b) BN statistics frozen, gamma/beta trained by the authors.
        backbone = s0.model.backbone
        assert backbone.norm_eval is True
        assert backbone.norm_cfg.requires_grad is authors
        # (e) Caffe input and strides for the MSCOCO DeepLab-v2 weights.
        pre = s0.model.data_preprocessor
        assert pre.std == ([1.0] * 3 if authors else [58.395, 57.12, 57.375])
        assert pre.bgr_to_rgb is not authors
        assert backbone.style == ('caffe' if authors else 'pytorch')
        assert pre.size == (321, 321)


def test_step_config_runs_under_stock_mmseg_train(embedded_voc, tiny_m0,
                                                  tmp_path):
    """A dumped step config trains with mmseg's own tools/train.py, into
    the experiment's M_0, bit for bit."""
    cfg = tiny_m0['cfg']
    step_cfg = build_step_config(cfg, 0, str(tmp_path / 'w'))
    step_cfg.dump(str(tmp_path / 'step0.py'))
    train = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    proc = subprocess.run([
        sys.executable, train,
        str(tmp_path / 'step0.py'), '--work-dir',
        str(tmp_path / 'w')
    ],
                          capture_output=True,
                          text=True,
                          timeout=TOOL_TIMEOUT_S,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_weights(
        str(tmp_path / 'w' / 'iter_16.pth'), tiny_m0['checkpoint'])
