"""``cuda_graph`` and ``channels_last``: the graph bookkeeping of
:class:`GraphedForward` (on the CPU, PyTorch's capture replaced by a fake
that records and runs the warm-ups as the real one does), the two hooks,
and the plan that adds them."""
import copy
import os.path as osp
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmseg.registry import HOOKS, MODELS
from mmseg_incremental.engine.hooks.cuda_graph_hook import encoders_to_graph
from mmseg_incremental.engine import cuda_graph as cg
from mmseg_incremental.planning import build_step_config
from mmseg_incremental.planning.plan import (experiment_fingerprint_source,
                                             fingerprint)
from test_experiment.utils import CFG_DIR
from test_models.utils import ExampleILTBackbone, distill_cfg, make_teacher


class FakeCapture:
    """``make_graphed_callables`` on the CPU: 3 warm-up forwards (which move
    BatchNorm statistics, as the real warm-up does), then a "graph" that
    runs the proxy's eager forward and counts its replays."""

    def __init__(self):
        self.samples = []
        self.replays = 0

    def __call__(self, proxy, sample):
        self.samples.append(sample)
        for _ in range(3):
            proxy(sample)

        def replay(x):
            self.replays += 1
            return proxy(x)

        return SimpleNamespace(forward=replay)


@pytest.fixture
def fake_cuda():
    capture = FakeCapture()
    with mock.patch.object(cg, '_graphable', return_value=True), \
            mock.patch.object(cg, '_make_graphed', capture):
        yield capture


def _backbone(seed=0):
    torch.manual_seed(seed)
    return ExampleILTBackbone().train()


def test_graph_once_per_signature_and_iteration(fake_cuda):
    module = _backbone()
    eager = copy.deepcopy(module)
    group = cg.GraphGroup()
    graphed = cg.graph_forward(module, group, max_graphs=2)
    assert cg.graph_forward(module, group) is graphed  # installed once
    x = torch.randn(2, 3, 16, 16)

    group.active = False
    out = module(x)  # inactive: eager, nothing captured
    expected = eager(x)
    assert fake_cuda.samples == [] and graphed.eager_calls == 1
    assert all(torch.equal(a, b) for a, b in zip(out, expected))

    group.active = True
    group.next_iteration()
    out = module(x)  # captured, then replayed once
    expected = eager(x)
    assert len(fake_cuda.samples) == 1 and fake_cuda.replays == 1
    assert all(torch.allclose(a, b) for a, b in zip(out, expected))
    # The warm-ups' BatchNorm updates were undone: the module has seen the
    # batch as often as the eager one (twice).
    for name in ('running_mean', 'running_var', 'num_batches_tracked'):
        assert torch.allclose(
            getattr(module.bn1, name), getattr(eager.bn1, name)), name

    module(x)  # same iteration: the graph's outputs may be in use
    assert fake_cuda.replays == 1 and graphed.eager_calls == 2
    group.next_iteration()
    module(x)
    assert fake_cuda.replays == 2 and len(fake_cuda.samples) == 1

    group.next_iteration()
    module(torch.randn(1, 3, 16, 16))  # a second signature: captured
    module.eval()
    module(x)  # eval mode: a third signature, beyond max_graphs: eager
    assert len(fake_cuda.samples) == 2 and len(graphed.graphs) == 2
    assert graphed.eager_calls == 3


def _graphed_after_one_call():
    """An active group, a graphed toy backbone and the input it saw once."""
    module = _backbone()
    group = cg.GraphGroup()
    group.active = True
    graphed = cg.graph_forward(module, group)
    x = torch.randn(2, 3, 16, 16)
    module(x)
    return module, group, graphed, x


def test_new_parameter_storage_drops_the_graphs(fake_cuda):
    module, group, graphed, x = _graphed_after_one_call()
    with torch.no_grad():  # in-place writes keep the graphs
        module.conv1.weight.mul_(0.5)
    group.next_iteration()
    module(x)
    assert len(fake_cuda.samples) == 1
    module.to(memory_format=torch.channels_last)  # new storage
    group.next_iteration()
    module(x)
    assert len(fake_cuda.samples) == 2 and len(graphed.graphs) == 1
    module.conv2.weight = torch.nn.Parameter(module.conv2.weight * 2)
    group.next_iteration()
    out = module(x)  # a new Parameter object: captured again, and used
    assert len(fake_cuda.samples) == 3
    expected = module.bn2(module.conv2(out[0])).relu()
    assert torch.allclose(out[1], expected)


def test_grad_mode_and_frozen_parameters_are_part_of_the_signature(fake_cuda):
    module, group, graphed, x = _graphed_after_one_call()
    group.next_iteration()
    with torch.no_grad():
        module(x)  # EF's forward-only graph is another one
    assert len(fake_cuda.samples) == 2
    module.conv1.weight.requires_grad_(False)
    group.next_iteration()
    module(x)  # other parameters get gradients: a third signature, eager
    assert len(fake_cuda.samples) == 2 and graphed.eager_calls == 1


def test_deepcopy_gets_its_own_graphs_in_the_same_group(fake_cuda):
    module, group, graphed, x = _graphed_after_one_call()
    twin = copy.deepcopy(module)
    twin_graphed = cg.graphed_forward(twin)
    assert twin_graphed is not graphed and twin_graphed.module is twin
    assert twin_graphed.group is group and twin_graphed.graphs == {}
    assert group.modules == [graphed, twin_graphed]
    with torch.no_grad():
        twin.conv1.weight.zero_()
    out = twin(x)  # runs the copy's own weights
    assert torch.equal(out[0], twin.bn1(twin.conv1(x)).relu())
    assert group.stats()["graphs"] == 2 and group.stats()["failed"] == 0


def test_cpu_tensors_run_eagerly():
    module = _backbone()
    group = cg.GraphGroup()
    group.active = True
    graphed = cg.graph_forward(module, group)
    module(torch.randn(2, 3, 16, 16))
    assert graphed.graphs == {} and graphed.eager_calls == 1


def _runner(model):
    logger = MMLogger.get_instance('test_cuda_graph_and_layout')
    return SimpleNamespace(model=model, logger=logger)


def test_channels_last_hook_converts_student_and_teacher(tmp_path):
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = MODELS.build(distill_cfg(path, 5, distill_output=dict()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    HOOKS.build(dict(type='ChannelsLastHook')).before_train(_runner(model))
    weight = model.backbone.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and \
        not weight.is_contiguous()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # On a GPU the teacher follows the student's layout.
    model._set_teacher_layout('cuda')
    assert not model.teacher.backbone.conv1.weight.is_contiguous()
    model.to(memory_format=torch.contiguous_format)
    model._set_teacher_layout('cuda')
    assert model.teacher.backbone.conv1.weight.is_contiguous()


def test_cuda_graph_hook_on_cpu_trains_eagerly(tmp_path):
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = MODELS.build(distill_cfg(path, 5, distill_output=dict()))
    hook = HOOKS.build(dict(type='CudaGraphHook'))
    hook.before_train(_runner(model))
    assert hook.group is None and cg.graphed_forward(model.backbone) is None
    # What it would graph: the student's and the teacher's backbones.
    assert encoders_to_graph(model) == [model.backbone, model.teacher.backbone]


def test_cuda_graph_hook_switches_the_group(fake_cuda, tmp_path):
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = MODELS.build(distill_cfg(path, 5, distill_output=dict()))
    hook = HOOKS.build(dict(type='CudaGraphHook'))
    with mock.patch.object(
            torch.Tensor,
            'is_cuda',
            new_callable=mock.PropertyMock,
            return_value=True):
        hook.before_train(_runner(model))
    group = hook.group
    assert cg.graphed_forward(model.backbone).group is group
    assert cg.graphed_forward(model.teacher.backbone).group is group
    hook.before_train_iter(None, 0)
    assert group.active and group.iteration == 1
    hook.before_val_epoch(None)
    assert not group.active
    hook.before_train_iter(None, 1)
    assert group.active and group.iteration == 2
    hook.after_train(_runner(model))
    assert not group.active


def test_plan_adds_the_hooks_to_every_step_outside_the_fingerprints():
    cfg = Config.fromfile(osp.join(CFG_DIR, 'bench_15-1_ld.py'))
    plain = fingerprint(experiment_fingerprint_source(cfg))
    cfg.merge_from_dict(dict(channels_last=True, cuda_graph=True))
    for step in (0, 1):
        step_cfg = build_step_config(cfg, step, 'w', teacher_checkpoint='t')
        types = [h['type'] for h in step_cfg.custom_hooks]
        assert types.count('ChannelsLastHook') == 1
        assert types.count('CudaGraphHook') == 1
        assert 'channels_last' not in step_cfg and 'cuda_graph' not in step_cfg
    # How a step runs, not what it learns: a resume may switch them.
    assert fingerprint(experiment_fingerprint_source(cfg)) == plain
    off = build_step_config(
        Config.fromfile(osp.join(CFG_DIR, 'bench_15-1_ld.py')), 0, 'w')
    types = [h['type'] for h in off.custom_hooks]
    assert 'ChannelsLastHook' not in types and 'CudaGraphHook' not in types


def test_a_module_that_cannot_be_captured_runs_eagerly():
    """A capture error (e.g. a host sync inside the forward) is logged once;
    the module then trains eagerly, its BatchNorm state as before."""
    calls = []

    def refuse(proxy, sample):
        calls.append(1)
        proxy(sample)  # a warm-up ran before the capture failed
        raise RuntimeError('operation not permitted when stream is '
                           'capturing')

    module = _backbone()
    eager = copy.deepcopy(module)
    group = cg.GraphGroup()
    group.active = True
    graphed = cg.graph_forward(module, group)
    x = torch.randn(2, 3, 16, 16)
    with mock.patch.object(cg, '_graphable', return_value=True), \
            mock.patch.object(cg, '_make_graphed', refuse):
        out = module(x)
        expected = eager(x)
        group.next_iteration()
        module(x)
        eager(x)
    assert calls == [1] and graphed.graphs == {}
    assert 'stream is capturing' in graphed.failed
    assert group.stats()['failed'] == 1
    assert graphed.eager_calls == 2
    assert all(torch.equal(a, b) for a, b in zip(out, expected))
    # Twice each, the failed warm-up's update undone.
    assert torch.equal(module.bn1.running_mean, eager.bn1.running_mean)


def test_cuda_graph_refuses_a_distributed_job(tmp_path):
    """Measured on a GPU under torchrun: the capture fails beside NCCL and
    leaves CUDA's generator broken, so the plan and the hook refuse."""
    cfg = Config.fromfile(osp.join(CFG_DIR, 'bench_15-1_ld.py'))
    cfg.merge_from_dict(dict(cuda_graph=True, launcher='pytorch'))
    with pytest.raises(ValueError, match='cuda_graph=False'):
        build_step_config(cfg, 0, 'w')
    cfg.cuda_graph = False  # everything else is fine distributed
    assert 'CudaGraphHook' not in [
        h['type'] for h in build_step_config(cfg, 0, 'w').custom_hooks
    ]
    path = str(tmp_path / 't.pth')
    make_teacher(path, 3)
    model = MODELS.build(distill_cfg(path, 5, distill_output=dict()))
    hook = HOOKS.build(dict(type='CudaGraphHook'))
    torch.distributed.init_process_group(
        'gloo',
        init_method=f'file://{tmp_path}/process_group',
        rank=0,
        world_size=1)
    try:
        with pytest.raises(RuntimeError, match='cuda_graph=False'):
            hook.before_train(_runner(model))
    finally:
        torch.distributed.destroy_process_group()
    assert hook.group is None and cg.graphed_forward(model.backbone) is None


def test_a_failed_capture_that_breaks_the_generator_raises():
    """Training on after such a capture would fail later, at the first
    random number: the capture failure says what to change instead."""

    def refuse(proxy, sample):
        raise RuntimeError('operation failed due to a previous error '
                           'during capture')

    def broken_rand(*args, **kwargs):
        raise RuntimeError('Offset increment outside graph capture '
                           'encountered unexpectedly.')

    module = _backbone()
    group = cg.GraphGroup()
    group.active = True
    cg.graph_forward(module, group)
    x = torch.randn(2, 3, 16, 16)
    with mock.patch.object(cg, '_graphable', return_value=True), \
            mock.patch.object(cg, '_make_graphed', refuse), \
            mock.patch.object(cg.torch, 'rand', broken_rand), \
            pytest.raises(RuntimeError, match='set cuda_graph=False'):
        module(x)
