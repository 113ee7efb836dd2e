"""Mixed precision as the top-level ``amp`` scalar: the step configs'
optim wrapper, a bf16 experiment on the CPU, and distillation in fp32."""
import copy
import glob
import json
import math
import os.path as osp
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from torch.profiler import profile

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS, OPTIM_WRAPPERS
from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.models import FeatureDistillLoss
from mmseg_incremental.models.segmentors import \
    incremental_encoder_decoder as dee_module
from mmseg_incremental.planning import build_step_config
from mmseg_incremental.planning import scalars as scalars_module
from mmseg_incremental.planning.plan import (fingerprint,
                                             step0_fingerprint_source)
from test_experiment.utils import CFG_DIR, tiny_cfg
from test_models.utils import (ExampleILTBackbone, distill_cfg, make_batch,
                               make_teacher)


def _cfg(**options):
    cfg = Config.fromfile(osp.join(CFG_DIR, 'bench_15-1_ld.py'))
    cfg.merge_from_dict(options)
    cfg.optim_wrapper.clip_grad = dict(max_norm=1.0)
    return cfg


@pytest.mark.parametrize('amp, device, bf16_ok, wrapper, dtype', [
    (None, 'cpu', True, 'OptimWrapper', None),
    ('bf16', 'cpu', True, 'AutocastOptimWrapper', 'bfloat16'),
    ('auto', 'cpu', True, 'AutocastOptimWrapper', 'bfloat16'),
    ('auto', 'cuda', True, 'AmpOptimWrapper', 'bfloat16'),
    ('auto', 'cuda', False, 'AmpOptimWrapper', 'float16'),
    ('fp16', 'cuda', True, 'AmpOptimWrapper', 'float16'),
    ('bf16', 'cuda', True, 'AmpOptimWrapper', 'bfloat16'),
])
def test_step_config_optim_wrapper(amp, device, bf16_ok, wrapper, dtype):
    cfg = _cfg(amp=amp)
    with mock.patch.object(scalars_module, 'get_device',
                           return_value=device), \
            mock.patch('torch.cuda.is_bf16_supported', return_value=bf16_ok):
        steps = [
            build_step_config(cfg, k, f'w/step_{k}', teacher_checkpoint='t')
            for k in (0, 1)
        ]
    for step in steps:
        optim = step.optim_wrapper
        assert optim.type == wrapper and optim.get('dtype') == dtype
        # The user's optimizer and wrapper arguments are kept.
        assert optim.optimizer.type == 'SGD' and optim.optimizer.momentum == \
            0.9
        assert optim.clip_grad == dict(max_norm=1.0)
        assert optim.get('loss_scale') == ('dynamic'
                                           if dtype == 'float16' else None)
        assert 'amp' not in step


@pytest.mark.parametrize('amp, device, bf16_ok, match', [
    ('fp16', 'cpu', True, 'needs a GPU'),
    ('bf16', 'cuda', False, 'does not support bfloat16'),
    ('half', 'cpu', True, 'unknown'),
])
def test_impossible_amp_is_refused(amp, device, bf16_ok, match):
    with mock.patch.object(scalars_module, 'get_device',
                           return_value=device), \
            mock.patch('torch.cuda.is_bf16_supported', return_value=bf16_ok):
        with pytest.raises(ValueError, match=match):
            build_step_config(_cfg(amp=amp), 0, 'w')


def test_amp_enters_the_step0_fingerprint():
    """AMP changes M_0's numerics: a bf16 M_0 is not an fp32 M_0. (The
    step-0 data's content key is given: no dataset is read.)"""
    plain = fingerprint(step0_fingerprint_source(_cfg(), 'data'))
    bf16 = fingerprint(step0_fingerprint_source(_cfg(amp='bf16'), 'data'))
    auto = fingerprint(step0_fingerprint_source(_cfg(amp='auto'), 'data'))
    assert plain != bf16 and bf16 == auto  # 'auto' is bf16 on the CPU


#: bf16 keeps 8 bits of mantissa (~3 significant digits): step 0's first
#: L_CE, on the same weights and batch, within 2 % of the fp32 value.
BF16_REL_TOL = 2e-2


def test_bf16_experiment_on_cpu(embedded_voc, tmp_path):
    """Two steps (M_0, then L'_D) trained under bf16 autocast through
    IncrementalExperiment; every logged loss is finite, and step 0's first
    loss is the fp32 one on the same weights and batch to bf16
    precision."""
    cfg = tiny_cfg('bench_15-1_ld.py', embedded_voc, max_step=1, amp='bf16')
    autocast, first = [], {}
    original = EncoderDecoder.extract_feat
    original_loss = EncoderDecoder.loss

    def extract_feat(self, inputs):
        if torch.is_grad_enabled():  # training, not the teacher or val
            autocast.append(
                torch.get_autocast_dtype('cpu') if torch.
                is_autocast_enabled('cpu') else None)
        return original(self, inputs)

    def loss(self, inputs, data_samples):
        """M_0's (a plain EncoderDecoder's) first training loss, with its
        weights and batch as they were."""
        if not first:
            first.update(
                state={
                    k: v.clone()
                    for k, v in self.state_dict().items()
                },
                inputs=inputs.clone(),
                data_samples=copy.deepcopy(data_samples))
        losses = original_loss(self, inputs, data_samples)
        first.setdefault('losses', {k: v.item() for k, v in losses.items()})
        return losses

    with mock.patch.object(EncoderDecoder, 'extract_feat', extract_feat), \
            mock.patch.object(EncoderDecoder, 'loss', loss):
        IncrementalExperiment(cfg, str(tmp_path / 'amp')).run()
    assert autocast and set(autocast) == {torch.bfloat16}
    for k in (0, 1):
        step_dir = tmp_path / 'amp' / f'step_{k}'
        step_cfg = Config.fromfile(str(step_dir / 'step_config.py'))
        assert step_cfg.optim_wrapper.type == 'AutocastOptimWrapper'
        assert step_cfg.optim_wrapper.dtype == 'bfloat16'
        logs = glob.glob(str(step_dir / '*' / 'vis_data' / 'scalars.json'))
        with open(logs[0]) as f:
            records = [json.loads(line) for line in f]
        losses = [(key, v) for r in records for key, v in r.items()
                  if 'loss' in key]
        keys = {key for key, _ in losses}
        assert 'decode.loss_ce' in keys
        assert ('distill.loss_distill_out' in keys) == (k == 1)
        assert all(math.isfinite(v) for _, v in losses), losses
        if k == 0:  # the first record is iteration 1's (interval 1)
            assert records[0]['decode.loss_ce'] == pytest.approx(
                first['losses']['decode.loss_ce'], rel=1e-4)
    # The same loss in fp32: M_0's model from its step config, the weights
    # and the batch of that first iteration, no autocast.
    step0 = Config.fromfile(
        str(tmp_path / 'amp' / 'step_0' / 'step_config.py'))
    model = MODELS.build(step0.model).train()
    model.load_state_dict(first['state'])
    with torch.no_grad():
        fp32 = model.loss(first['inputs'], first['data_samples'])
    bf16 = first['losses']['decode.loss_ce']
    assert bf16 == pytest.approx(
        fp32['decode.loss_ce'].item(), rel=BF16_REL_TOL)
    assert bf16 != fp32['decode.loss_ce'].item()  # autocast was on


def test_autocast_optim_wrapper_trains_in_bf16(tmp_path):
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = MODELS.build(distill_cfg(path, 5, distill_output=dict()))
    optim = OPTIM_WRAPPERS.build(
        dict(
            type='AutocastOptimWrapper',
            dtype='bfloat16',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    dtypes = []
    forward = model.decode_head.forward
    with mock.patch.object(
            model.decode_head,
            'forward',
            side_effect=lambda x: dtypes.append(forward(x).dtype) or forward(x)
    ):
        log = model.train_step(make_batch(5), optim)
    assert dtypes == [torch.bfloat16]
    assert all(math.isfinite(v.item()) for v in log.values())


def test_ld_under_autocast_equals_fp32(tmp_path):
    """L'_D computes in fp32 under autocast; its value is the fp32 one to
    bf16 precision; the teacher runs as a bf16 copy that gives autocast's
    logits bit for bit without casting its weights."""
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = MODELS.build(
        distill_cfg(path, 5, distill_output=dict(pixel_mask='old'))).train()
    data = model.data_preprocessor(make_batch(5, seed=3), training=True)
    fp32 = model.loss(data['inputs'], data['data_samples'])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        bf16 = model.loss(data['inputs'], data['data_samples'])
    key = 'distill.loss_distill_out'
    assert bf16[key].dtype == torch.float32
    assert bf16[key].item() == pytest.approx(fp32[key].item(), rel=2e-2)
    assert bf16[key].item() != fp32[key].item()  # autocast was on
    # The teacher: one cast copy, logits equal to autocast's own casts.
    teacher = model.teacher
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        copy = model.runnable_teacher('cpu')
        assert copy is not teacher and copy is model.runnable_teacher('cpu')
        assert copy.backbone.conv1.weight.dtype == torch.bfloat16
        assert teacher.backbone.conv1.weight.dtype == torch.float32
        expected = teacher.decode_head(teacher.extract_feat(data['inputs']))
        with profile() as prof:
            logits = copy.decode_head(copy.extract_feat(data['inputs']))
    assert torch.equal(logits, expected)
    casts = {e.key: e.count for e in prof.key_averages()}['aten::_to_copy']
    assert casts == 1  # the input only, no weight


def test_feature_distill_in_fp32_under_autocast():
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(2, 4, 3, 3, generator=gen).bfloat16()
    teacher = torch.randn(2, 4, 3, 3, generator=gen).bfloat16()
    loss = FeatureDistillLoss(loss_weight=2.0)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = loss(student, teacher)
    assert value.dtype == torch.float32
    expected = 2.0 * ((student.float() - teacher.float())**2).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


@MODELS.register_module(force=True)
class FP32IslandBackbone(ExampleILTBackbone):
    """Runs its second conv in fp32 even under autocast (as some custom
    modules do): a teacher copy with bf16 weights cannot run it."""

    def forward(self, x):
        x1 = torch.relu(self.bn1(self.conv1(x)))
        with torch.autocast('cpu', enabled=False):
            x2 = torch.relu(self.bn2(self.conv2(x1.float())))
        return x1, x2


def test_teacher_falls_back_to_fp32_when_the_copy_cannot_run(tmp_path):
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    cfg = distill_cfg(path, 5, distill_output=dict())
    cfg['backbone']['type'] = 'FP32IslandBackbone'
    model = MODELS.build(cfg).train()
    data = model.data_preprocessor(make_batch(5), training=True)
    with mock.patch.object(dee_module, 'print_log') as log, torch.autocast(
            'cpu', dtype=torch.bfloat16):
        first = model.loss(data['inputs'], data['data_samples'])
        again = model.loss(data['inputs'], data['data_samples'])
    assert model._low_precision is False
    assert sum('fp32 teacher runs instead' in c.args[0]
               for c in log.call_args_list) == 1
    key = 'distill.loss_distill_out'
    assert first[key].item() == again[key].item()
