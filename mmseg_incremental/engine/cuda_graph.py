"""Replay an encoder's forward (and backward) from CUDA graphs.

At the paper's batch (4 x 321², DeepLab-v2 ResNet-101) a training step
launches some two thousand small kernels; the GPU then waits on the host
that launches them (mixed precision barely changes the step time). A CUDA
graph records the kernels of one forward/backward once and replays them
with a single launch. :func:`graph_forward` does this for a module whose
input has a fixed shape -- the backbone of the student S_k and of the
teacher M_{k-1} on fixed-size training crops -- with PyTorch's
``torch.cuda.make_graphed_callables``:

* one graph per *signature*: input shape, dtype and ``requires_grad``, the
  module's train/eval mode, grad mode, the autocast state and which
  parameters require grad (EF freezes the encoder: a forward-only graph).
  At most ``max_graphs`` per module; other signatures run eagerly;
* nothing is captured or replayed unless the module's :class:`GraphGroup`
  is active (:class:`~mmseg_incremental.engine.hooks.CudaGraphHook` turns
  it on for training iterations only: validation images vary in size), nor
  for CPU tensors, extra arguments or while another capture runs;
* a graph's outputs live in its static memory and are overwritten by its
  next replay. A graph is therefore replayed at most once per iteration
  (:meth:`GraphGroup.next_iteration`); a second call in the same iteration
  runs eagerly, so nothing a backward still needs is overwritten;
* the graph holds the parameters' storage: when a parameter's storage
  changes (``.to(memory_format=...)``, a dtype cast, ``.data =``) every
  graph of the module is dropped and captured anew. In-place writes
  (optimizer steps, ``load_state_dict``) are what a graph expects;
* the warm-up and capture run the module four times on the first batch;
  BatchNorm statistics and counters are restored afterwards, so the
  captured module has seen that batch exactly once, as an eager one.

Gradients reach the parameters through autograd as in eager mode (mmengine's
optimizer wrappers, gradient clipping and AMP's loss scaling are
unchanged); what differs from eager is only the kernels' launch.
"""
import copy
import logging
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor, nn


class GraphGroup:
    """The switch and iteration counter shared by graphed modules.

    Attributes:
        active (bool): Capture and replay only while True.
        iteration (int): Bumped by :meth:`next_iteration`; each graph is
            replayed at most once per value.
    """

    def __init__(self) -> None:
        self.active = False
        self.iteration = 0
        self.modules: List['GraphedForward'] = []

    def next_iteration(self) -> None:
        """Start a new iteration: every graph may replay once more."""
        self.iteration += 1

    def stats(self) -> Dict[str, int]:
        """Graphs captured, replays and eager calls over all modules."""
        out = dict(graphs=0, captures=0, replays=0, eager=0, failed=0)
        for graphed in self.modules:
            out['failed'] += graphed.failed is not None
            out['graphs'] += len(graphed.graphs)
            out['captures'] += graphed.captures
            out['replays'] += graphed.replays
            out['eager'] += graphed.eager_calls
        return out


class _Forward(nn.Module):
    """The module's own forward as a module (what PyTorch graphs): its
    parameters are the target's, its own ``forward`` does not recurse into
    the patched one."""

    def __init__(self, target: nn.Module) -> None:
        super().__init__()
        self.target = target

    def forward(self, inputs: Tensor):
        return type(self.target).forward(self.target, inputs)


class GraphedForward:
    """``module.forward`` replaced by graph replays where it can be.

    Args:
        module (nn.Module): The module (e.g. a backbone) whose forward is
            graphed. Its own class's ``forward`` runs everything else.
        group (GraphGroup): Switch and iteration counter.
        max_graphs (int): Signatures captured at most. Defaults to 2.
    """

    def __init__(self,
                 module: nn.Module,
                 group: GraphGroup,
                 max_graphs: int = 2) -> None:
        self.module = module
        self.group = group
        self.max_graphs = max_graphs
        self.graphs: Dict[tuple, Callable] = {}
        self.last_replay: Dict[tuple, int] = {}
        self.storage: Optional[Tuple[int, ...]] = None
        self.captures = self.replays = self.eager_calls = 0
        #: Why capturing failed (then everything runs eagerly), or None.
        self.failed: Optional[str] = None
        # The modules' parameter and buffer dicts, walked once (at the
        # first call: a deep copy's module is complete only then).
        self._dicts: Optional[Tuple[List[dict], List[dict]]] = None
        group.modules.append(self)

    def __deepcopy__(self, memo: dict) -> 'GraphedForward':
        # A copy of the module (e.g. the teacher's low-precision copy) gets
        # its own, empty set of graphs in the same group.
        return GraphedForward(
            copy.deepcopy(self.module, memo), self.group, self.max_graphs)

    def eager(self, *args, **kwargs):
        """The module's own forward."""
        self.eager_calls += 1
        return type(self.module).forward(self.module, *args, **kwargs)

    def _tensor_dicts(self) -> Tuple[List[dict], List[dict]]:
        if self._dicts is None:
            modules = list(self.module.modules())
            self._dicts = ([m._parameters for m in modules if m._parameters],
                           [m._buffers for m in modules if m._buffers])
        return self._dicts

    def _signature(self, inputs: Tensor) -> tuple:
        autocast = torch.is_autocast_enabled('cuda')
        params = self._tensor_dicts()[0]
        return (tuple(inputs.shape), inputs.dtype, inputs.device,
                inputs.requires_grad, self.module.training,
                torch.is_grad_enabled(), autocast,
                torch.get_autocast_dtype('cuda') if autocast else None,
                tuple(p.requires_grad for d in params for p in d.values()
                      if p is not None))

    def _storage(self) -> Tuple[int, ...]:
        """Where every parameter and buffer lives (a replaced tensor or
        ``.data`` shows here; the dicts hold the modules' current ones)."""
        params, buffers = self._tensor_dicts()
        return tuple(t.data_ptr() for d in params + buffers
                     for t in d.values() if t is not None)

    def __call__(self, *args, **kwargs):
        if args and isinstance(args[0], Tensor):
            inputs = args[0]
        else:
            return self.eager(*args, **kwargs)
        if len(args) > 1 or kwargs or not self.group.active or \
                self.failed is not None or not _graphable(inputs):
            return self.eager(*args, **kwargs)
        storage = self._storage()
        if storage != self.storage:  # new parameter storage: recapture
            self.graphs.clear()
            self.last_replay.clear()
            self.storage = storage
        key = self._signature(inputs)
        if self.last_replay.get(key) == self.group.iteration:
            return self.eager(inputs)  # its outputs are still in use
        graphed = self.graphs.get(key)
        if graphed is None:
            if len(self.graphs) >= self.max_graphs:
                return self.eager(inputs)
            graphed = self._capture(inputs)
            if graphed is None:  # this module cannot be graphed
                return self.eager(inputs)
            self.graphs[key] = graphed
            self.storage = self._storage()
        self.last_replay[key] = self.group.iteration
        self.replays += 1
        return graphed(inputs)

    def _capture(self, inputs: Tensor) -> Optional[Callable]:
        """Graph the forward (and, where anything requires grad, the
        backward) for ``inputs``' signature; BatchNorm state restored.

        A module PyTorch cannot capture (a host sync such as ``.item()``,
        data-dependent shapes, CPU work) raises here: it is logged once and
        the module runs eagerly from then on (None) -- unless the failed
        capture left CUDA's random generator unusable, which is raised
        (:func:`_check_generator`)."""
        saved = [(b, b.detach().clone()) for b in self.module.buffers()]
        proxy = _Forward(self.module).train(self.module.training)
        sample = inputs.detach().clone().requires_grad_(inputs.requires_grad)
        try:
            graphed = _make_graphed(proxy, sample)
        except (RuntimeError, AssertionError) as error:
            self.failed = f'{type(error).__name__}: {error}'
            print_log(
                f'cuda_graph: {type(self.module).__name__} cannot be '
                f'captured ({self.failed.splitlines()[0][:200]}); it runs '
                'eagerly.',
                logger='current',
                level=logging.WARNING)
            graphed = None
        finally:
            with torch.no_grad():
                for buffer, value in saved:
                    buffer.copy_(value)
        if graphed is None:
            _check_generator(inputs.device, self.failed)
            return None
        self.captures += 1
        return graphed.forward


def _check_generator(device: torch.device, why: str) -> None:
    """Raise if CUDA's random generator no longer works after a failed
    capture (it stays in capture mode: "Offset increment outside graph
    capture"; seen with NCCL beside the capture). Training on would fail at
    the first dropout, or a later step; the error says what to change."""
    try:
        torch.rand(1, device=device)
    except RuntimeError as error:
        raise RuntimeError(
            f'cuda_graph: a failed capture ({why.splitlines()[0][:200]}) '
            f'left the random generator of {device} unusable ({error}); '
            'set cuda_graph=False.') from error


def _graphable(inputs: Tensor) -> bool:
    """A CUDA tensor, outside another graph's capture."""
    return inputs.is_cuda and not torch.cuda.is_current_stream_capturing()


def _make_graphed(proxy: nn.Module, sample: Tensor) -> nn.Module:
    """PyTorch's ``make_graphed_callables`` on ``proxy`` (3 warm-up runs
    on a side stream, then the capture), under the caller's autocast state
    without autocast's weight-cast cache, which it refuses."""
    with torch.autocast(
            'cuda',
            dtype=torch.get_autocast_dtype('cuda'),
            enabled=torch.is_autocast_enabled('cuda'),
            cache_enabled=False):
        return torch.cuda.make_graphed_callables(
            proxy, (sample, ), allow_unused_input=True)


def graph_forward(module: nn.Module,
                  group: GraphGroup,
                  max_graphs: int = 2) -> GraphedForward:
    """Install a :class:`GraphedForward` as ``module.forward`` (once)."""
    current = module.__dict__.get('forward')
    if isinstance(current, GraphedForward):
        current.group = group
        if current not in group.modules:
            group.modules.append(current)
        return current
    graphed = GraphedForward(module, group, max_graphs)
    module.forward = graphed
    return graphed


def graphed_forward(module: nn.Module) -> Optional[GraphedForward]:
    """The :class:`GraphedForward` installed on ``module``, if any."""
    current = module.__dict__.get('forward')
    return current if isinstance(current, GraphedForward) else None
