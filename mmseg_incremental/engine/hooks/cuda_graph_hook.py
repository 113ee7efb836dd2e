"""Train the encoders from CUDA graphs (``cuda_graph = True``)."""
from typing import List, Optional, Union

import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch import nn

from mmseg.registry import HOOKS
from ..cuda_graph import GraphGroup, graph_forward
from .runner_model import on_cuda, runner_model

DATA_BATCH = Optional[Union[dict, tuple, list]]
#: Why ``cuda_graph`` refuses a distributed job (measured on an H200 with
#: torchrun, one process): PyTorch's ``make_graphed_callables`` captures in
#: its global error mode, which the NCCL watchdog thread's CUDA calls
#: invalidate; the failed capture then leaves CUDA's random generator
#: unusable ("Offset increment outside graph capture").
CUDA_GRAPH_DISTRIBUTED = (
    'cuda_graph=True cannot train in a distributed job: the CUDA graph '
    'capture fails beside NCCL and breaks the random generator for the rest '
    'of the run. Set cuda_graph=False for torchrun/slurm runs (amp, '
    'channels_last and val_batch_size work there).')


def encoders_to_graph(model: nn.Module) -> List[nn.Module]:
    """The backbones to graph: the student's and, for a
    ``DistillEncoderDecoder``, the teacher M_{k-1}'s (its low-precision
    copy, made later by deep copy, gets its own graphs)."""
    found = [model.backbone] if hasattr(model, 'backbone') else []
    teacher = model.__dict__.get('_teacher')
    if teacher:
        found.append(teacher[0].backbone)
    low = getattr(model, '_low_precision', None)
    if isinstance(low, tuple):
        found.append(low[1].backbone)
    return found


@HOOKS.register_module()
class CudaGraphHook(Hook):
    """Replay the backbones' forward/backward of training iterations from
    CUDA graphs (see :mod:`mmseg_incremental.engine.cuda_graph`).

    At ``before_train`` the student's backbone (S_k) and the teacher's
    (M_{k-1}) get a :class:`GraphedForward`; graphs are captured at their
    first training iteration on the fixed-size crops and replayed after,
    once per iteration. Validation (whole images of varying size) and
    anything outside training run eagerly. On a model that is not on a
    GPU the hook only says so.

    Args:
        max_graphs (int): Input signatures graphed per backbone (the
            training crop, e.g. a smaller last batch). Defaults to 2.
    """

    priority = 'LOW'

    def __init__(self, max_graphs: int = 2) -> None:
        self.max_graphs = max_graphs
        self.group: Optional[GraphGroup] = None

    def before_train(self, runner) -> None:
        if dist.is_available() and dist.is_initialized():
            raise RuntimeError(CUDA_GRAPH_DISTRIBUTED)
        model = runner_model(runner)
        if not on_cuda(model):
            print_log(
                'cuda_graph: the model is not on a GPU; it trains '
                'eagerly.',
                logger='current')
            return
        # Active from the first training iteration on: passes before it
        # (PLOP's threshold pass over the step's images) run eagerly.
        self.group = GraphGroup()
        for encoder in encoders_to_graph(model):
            graph_forward(encoder, self.group, self.max_graphs)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        if self.group is not None:
            self.group.next_iteration()
            self.group.active = True

    def before_val_epoch(self, runner) -> None:
        if self.group is not None:
            self.group.active = False

    def after_train(self, runner) -> None:
        if self.group is None:
            return
        self.group.active = False
        stats = self.group.stats()
        print_log(
            f'cuda_graph: {stats["graphs"]} graphs captured, '
            f'{stats["replays"]} replays, {stats["eager"]} eager encoder '
            f'forwards, {stats["failed"]} encoders not capturable.',
            logger='current')
