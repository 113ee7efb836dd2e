"""Per-iteration time and peak memory of each method, as ratios to FT.

The methods: ILT's (FT, L'_D, L''_D, EF and their combinations), MiB,
PLOP and DKD, each with the terms of its shipped fragment
(``configs/_base_/methods/{ft,ld,fd,ef,ef-ld,ld-fd,mib,plop,dkd}.py``, the
``incremental`` dict; see ``METHODS`` for the variants: L'_D with a
cached teacher, PLOP without its pseudo-labels). PLOP's thresholds are
fitted once, on the batch's first image, as ``PseudoLabelHook`` does over
the step's images before training.

DKD trains its own head (``DKDHead`` on mmseg's ``ASPPHead``: sigmoid
classifiers and an auxiliary one; DeepLab-v2's head has no 1x1 classifier
to decompose), the decode head of its leaves
(``configs/embedded/bench_15-1_dkd-overlapped.py`` for the tiny model,
``configs/il/dkd/voc_15-1_overlapped.py`` for R101; ``DKD_HEAD``), on the
bench's backbone. Its reference is ``FT (DKD head)``, FT on that same
network with DKD's step-0 losses (``REFERENCE``): DKD's ``time_ratio``,
``floor_ratio`` and ``mem_ratio`` are against it (its teacher is that
network's too), and ``FT (DKD head)``'s against FT; ``time_ratio_ft`` in
the JSON is every method's time over FT's.

All methods train the same IncrementalEncoderDecoder step (C_old -> C_new)
on the same random batch, in one run: step times round-robin in one process
(noise hits every method alike; each round starts one method later).
``time_ratio`` is the median over rounds of the method's time over FT's
in the same round (a shared machine disturbs it less than a ratio of
medians), by default on the CPU from the process's CPU time
(``median_cpu_s``: time spent descheduled by other jobs does not count),
on CUDA from wall time; ``median_s`` is wall time. The memory a step
adds: in the same process on CUDA (peak statistics reset per method), in
a fresh process per method on CPU (peak RSS cannot be reset; the median of
``--mem-runs`` processes). Stock mmseg
``EncoderDecoder`` (no teacher) is measured too: our FT must cost the
same. ``L'_D (cached teacher)`` is L'_D with ``teacher_cache`` (in
memory), timed warm: the warm-up steps filled it, so it replays the
teacher's logits of the batch.

``floor`` (``floor_ratio`` in the JSON, ``floor_s`` the CPU/wall seconds):
the least a method's step can cost, measured in the same rounds: the
student's step without any term (FT, or EF for a frozen encoder) plus the
teacher work its terms need, one forward of M_{k-1} on the batch (the
head alone under EF, which shares the encoder; none with the cached
teacher). ``time_ratio - floor_ratio`` is what the method's own losses
cost.

    python benchmarks/bench_train_step.py                 # CPU, tiny model
    python benchmarks/bench_train_step.py --device cuda   # R101, 321², batch 4
    python benchmarks/bench_train_step.py --device cuda --amp  # mixed prec.
    python benchmarks/bench_train_step.py --model r101 --size 65 --batch 1

On CUDA the run also counts each method's host syncs per training step
(``torch.cuda.set_sync_debug_mode``); ``--mmseg-loss`` adds FT, L'_D and
EF+L'_D with mmseg's own ``loss_by_feat`` (three syncs a step) for
comparison, timed in the same rounds.

``--amp`` runs every method's forward and losses under autocast with the
dtype the experiment's ``amp='auto'`` picks (bf16 on the CPU and on GPUs
that support it, else fp16 with a ``GradScaler``). ``--threads`` defaults
to ``$OMP_NUM_THREADS`` (else every core).
"""
import argparse
import contextlib
import copy
import json
import multiprocessing as mp
import os
import os.path as osp
import resource
import statistics
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The methods: name -> (fragment of configs/_base_/methods whose
#: ``incremental`` dict (IncrementalEncoderDecoder's arguments) the method
#: trains with, changes to it); 'stock' is mmseg's EncoderDecoder.
METHODS = {
    'stock': None,
    'FT': ('ft', {}),
    "L'_D": ('ld', {}),
    "L''_D": ('fd', {}),
    'EF': ('ef', {}),
    "EF+L'_D": ('ef-ld', {}),
    "L'_D+L''_D": ('ld-fd', {}),
    # L'_D replaying the teacher's logits from memory.
    "L'_D (cached teacher)": ('ld', dict(teacher_cache=dict(dir=None))),
    'MiB': ('mib', {}),
    # POD over the 4 stages (the tiny R18 returns only its last one; the
    # segmentor asks for all) and the logits; pseudo-labels with
    # thresholds fitted once (build()).
    'PLOP': ('plop', {}),
    # PLOP without its pseudo-labels: the cost of POD alone.
    'PLOP (POD only)': ('plop', dict(distill_terms=dict(pseudo_label=None))),
    # DKD's term on DKD's network (DKD_HEAD), and FT on that network, its
    # reference (REFERENCE).
    'DKD': ('dkd', {}),
    'FT (DKD head)': ('ft', {}),
}
#: Methods on DKD's network: the decode head of the DKD leaf of each
#: ``--model`` (``model.decode_head``) replaces the bench model's.
DKD_HEAD = {
    'tiny': 'configs/embedded/bench_15-1_dkd-overlapped.py',
    'r101': 'configs/il/dkd/voc_15-1_overlapped.py',
}
DKD_NETWORK = ('DKD', 'FT (DKD head)')
#: The FT a method's time, floor and memory are divided by (FT on its own
#: network); FT otherwise.
REFERENCE = {'DKD': 'FT (DKD head)'}
#: Suffix of a method timed with mmseg's own ``loss_by_feat`` (its
#: ``.item()`` count and boolean-indexing accuracy) in place of ours.
MMSEG_LOSS = ' (mmseg loss)'
MMSEG_LOSS_OF = ('FT', "L'_D", "EF+L'_D")

# time / FT
TARGETS = {
    "L'_D": 1.25,
    "L''_D": 1.30,
    "EF+L'_D": 0.60,
    "L'_D (cached teacher)": 1.05,
    'MiB': 1.30,
    'PLOP': 1.35,
    'PLOP (POD only)': 1.25,
    'DKD': 1.25,
}
# step memory / FT
MEM_TARGETS = {'MiB': 1.25}


def method_cfg(method: str) -> dict:
    """IncrementalEncoderDecoder's arguments of ``method``: its shipped
    fragment's ``incremental`` dict, with the variant's changes merged in
    (a ``None`` term drops an inherited one, as in a config)."""
    from mmengine.config import Config
    fragment, changes = METHODS[method]
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/methods', f'{fragment}.py'))
    incremental = cfg.incremental.to_dict()
    for key, value in copy.deepcopy(changes).items():
        if isinstance(value, dict) and isinstance(incremental.get(key), dict):
            incremental[key].update(value)
        else:
            incremental[key] = value
    return incremental


def reference(method: str) -> str:
    """The FT ``method`` is measured against (``REFERENCE``)."""
    return REFERENCE.get(method.replace(MMSEG_LOSS, ''), 'FT')


def network(method: str) -> str:
    """``'dkd'`` for a method on DKD's network, else ``''``."""
    return 'dkd' if method in DKD_NETWORK else ''


def model_cfg(model: str, num_classes: int, net: str = '') -> dict:
    """The bench's model (tiny DeepLab-v2 R18 or R101) with
    ``num_classes`` outputs; ``net='dkd'``: with the decode head of the
    DKD leaf of ``model`` (``DKD_HEAD``)."""
    from mmengine.config import Config
    if model == 'r101':
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs/_base_/models/deeplabv2_r101-d8.py'))
    else:
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs/_base_/models/deeplabv2_r18-tiny.py'))
    model_dict = cfg.model.to_dict()
    if net == 'dkd':
        from mmseg_incremental.utils import load_config
        leaf = load_config(osp.join(ROOT, DKD_HEAD[model]))
        model_dict['decode_head'] = leaf.model.decode_head.to_dict()
    model_dict['decode_head']['num_classes'] = num_classes
    model_dict['data_preprocessor'] = None
    return model_dict


def batch(device: str, size: int, n: int, num_classes: int, seed: int = 0):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=g).to(device)
    samples = []
    for _ in range(n):
        s = SegDataSample()
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        s.gt_sem_seg = PixelData(data=label.to(device))
        s.set_metainfo(
            dict(
                img_path=f'bench_{len(samples)}.jpg',  # teacher_cache key
                img_shape=(size, size),
                pad_shape=(size, size)))
        samples.append(s)
    return inputs, samples


@contextlib.contextmanager
def mmseg_loss_by_feat(enabled: bool):
    """While active, ``decode_loss_by_feat`` computes as mmseg's own
    ``BaseDecodeHead.loss_by_feat`` does: the CE's labelled-pixel count by
    ``.item()``, ``accuracy`` by boolean indexing (the host syncs)."""
    if not enabled:
        yield
        return
    from mmseg.models.losses import accuracy
    from mmseg_incremental.models.decode_heads import loss_by_feat as module
    saved = module.ce_avg_factor, module.accuracy
    module.ce_avg_factor = lambda *args: None
    module.accuracy = lambda pred, target, ignore: accuracy(
        pred, target, ignore_index=ignore)
    try:
        yield
    finally:
        module.ce_avg_factor, module.accuracy = saved


def build(method: str, args: argparse.Namespace, teachers: dict):
    """The model of ``method`` (stock = mmseg EncoderDecoder) and its SGD;
    ``teachers``: the teacher checkpoint of each network (``network``)."""
    import torch
    from mmseg.registry import MODELS
    import mmseg_incremental  # noqa: F401
    from mmseg_incremental.planning.scalars import amp_dtype
    stock_loss = method.endswith(MMSEG_LOSS)
    method = method[:-len(MMSEG_LOSS)] if stock_loss else method
    torch.manual_seed(0)
    cfg = model_cfg(args.model, args.new_classes, network(method))
    if METHODS[method] is not None:
        cfg.update(
            type='IncrementalEncoderDecoder',
            teacher_checkpoint=teachers[network(method)],
            **method_cfg(method))
    model = MODELS.build(cfg).to(args.device)
    model.init_weights()
    model.train()
    group = None
    if args.channels_last:  # ChannelsLastHook
        model.to(memory_format=torch.channels_last)
    if args.cuda_graph:  # CudaGraphHook
        from mmseg_incremental.engine.hooks.cuda_graph_hook import \
            encoders_to_graph
        from mmseg_incremental.engine.cuda_graph import (GraphGroup,
                                                         graph_forward)
        group = GraphGroup()
        for encoder in encoders_to_graph(model):
            graph_forward(encoder, group)
        group.active = True
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)
    inputs, samples = batch(args.device, args.size, args.batch,
                            args.new_classes)
    from mmseg_incremental.models.terms import PseudoLabelTerm
    for term in getattr(model, 'terms_of_type',
                        lambda cls: [])(PseudoLabelTerm):
        # PLOP's thresholds (PseudoLabelHook's pass before training), here
        # from the batch's first image: a whole batch would raise the
        # process's peak RSS before the step memory is measured.
        term.fit_thresholds(model, [(inputs[:1], samples[:1])])
    dtype = amp_dtype('auto', args.device) if args.amp else None
    scaler = torch.amp.GradScaler(args.device, enabled=dtype == 'float16')

    def step(sync: bool = True) -> dict:
        if group is not None:
            group.next_iteration()
        with torch.autocast(
                args.device,
                dtype=getattr(torch, dtype or 'bfloat16'),
                enabled=args.amp), mmseg_loss_by_feat(stock_loss):
            losses = model.loss(inputs, samples)
        loss = sum(v.float() for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
        if sync and args.device == 'cuda':
            torch.cuda.synchronize()
        return {k: v.detach() for k, v in losses.items() if 'loss' in k}

    return model, step


def count_host_syncs(step) -> int:
    """Synchronizing CUDA calls of one training step (PyTorch's sync debug
    mode warns at each), the step's own final ``synchronize`` left out."""
    import warnings

    import torch
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            step(sync=False)
        finally:
            torch.cuda.set_sync_debug_mode('default')
    torch.cuda.synchronize()
    return sum('synchroniz' in str(w.message) for w in caught)


def time_all(args: argparse.Namespace, teachers: dict, queue) -> None:
    """Median step time of every method, round-robin in one process so that
    machine noise hits all methods alike. On CUDA also the memory a step
    adds (``max_memory_allocated`` after ``reset_peak_memory_stats``, per
    method, in the same process)."""
    import torch
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    models, steps = {}, {}
    for m in args.methods:
        models[m], steps[m] = build(m, args, teachers)
    floors = {m: floor_parts(models[m], m) for m in args.methods}
    # The floor's pieces, timed in the same rounds: the base step of a
    # floor that is not timed itself (EF, when a frozen-encoder method is)
    # and the teacher's forward, once per network.
    extra = {}
    for base in sorted({base for base, _ in floors.values()} - set(steps)):
        extra[base] = build(base, args, teachers)[1]
    owners = {}
    for m, (_, part) in floors.items():
        if part is not None:
            owners.setdefault(network(m), models[m])
    for net, owner in owners.items():
        extra.update(teacher_steps(owner, args, teacher_suffix(net)))
    del models
    memory, syncs = {}, {}
    for method, step in steps.items():
        for _ in range(args.warmup):
            step()
        if args.device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            step()
            memory[method] = (torch.cuda.max_memory_allocated() - base) / 2**20
            syncs[method] = count_host_syncs(step)
    for name, step in extra.items():
        for _ in range(args.warmup):
            step()
    timed = dict(steps, **{f'[{k}]': v for k, v in extra.items()})
    times = {m: [] for m in timed}
    cpu_times = {m: [] for m in timed}
    names = list(timed)
    for round_ in range(args.iters):
        # Each round starts one method later: no method always runs right
        # after the same one (position in the round biases a step's time).
        shift = round_ % len(names)
        for method in names[shift:] + names[:shift]:
            step = timed[method]
            t, c = time.perf_counter(), time.process_time()
            step()
            times[method].append(time.perf_counter() - t)
            cpu_times[method].append(time.process_time() - c)
    clock = times if args.ratio_clock == 'wall' else cpu_times
    ratios = {
        m: statistics.median(a / b
                             for a, b in zip(clock[m], clock[reference(m)]))
        for m in steps
    }
    ratios_ft = {
        m: statistics.median(a / b for a, b in zip(clock[m], clock['FT']))
        for m in steps
    }
    floor_s, floor_ratios = {}, {}
    for m, (base, part) in floors.items():
        base_clock = clock[base if base in steps else f'[{base}]']
        per_round = [
            b + (0.0 if part is None else clock[f'[teacher {part}]'][i])
            for i, b in enumerate(base_clock)
        ]
        floor_s[m] = statistics.median(per_round)
        floor_ratios[m] = statistics.median(
            a / b for a, b in zip(per_round, clock[reference(m)]))
    if args.profile:
        for method in steps:
            profile_step(steps[method], method, args)
    queue.put(({
        m: statistics.median(times[m])
        for m in steps
    }, {
        m: statistics.median(cpu_times[m])
        for m in steps
    }, ratios, memory, syncs, floor_s, floor_ratios, ratios_ft))


def teacher_suffix(net: str) -> str:
    """The teacher-forward names' suffix of a network (``network``)."""
    return ' (DKD head)' if net == 'dkd' else ''


def floor_parts(model, method: str = 'FT') -> tuple:
    """The floor of a built method (see the module docstring): (its
    reference FT, or 'EF', None / 'full' / 'head' for the teacher's
    forward, with its network's suffix)."""
    from mmseg_incremental.models.segmentors import \
        IncrementalEncoderDecoder
    if method in REFERENCE.values():  # an FT: its own floor
        return method, None
    if not isinstance(model, IncrementalEncoderDecoder):
        return reference(method), None
    base = 'EF' if model.freeze_encoder else reference(method)
    if not model._needs or model.teacher_cache is not None:
        return base, None
    part = 'head' if model.freeze_encoder else 'full'
    return base, part + teacher_suffix(network(method))


def teacher_steps(model, args: argparse.Namespace, suffix: str = '') -> dict:
    """One forward of ``model``'s teacher on the batch, as the segmentor
    runs it (no_grad, its layout, autocast as the steps): whole
    (``'teacher full'``) and head only on its encoder's features
    (``'teacher head'``, the features computed once); ``suffix`` is
    appended to both names."""
    import torch
    inputs, _ = batch(args.device, args.size, args.batch, args.new_classes)
    dtype = None
    if args.amp:
        from mmseg_incremental.planning.scalars import amp_dtype
        dtype = amp_dtype('auto', args.device)
    feats = []

    def context():
        return torch.autocast(
            args.device,
            dtype=getattr(torch, dtype or 'bfloat16'),
            enabled=args.amp)

    def teacher():
        return model.runnable_teacher(inputs.device.type)

    def full(sync: bool = True) -> None:
        with torch.no_grad(), context():
            teacher().decode_head.forward(teacher().extract_feat(inputs))
        if sync and args.device == 'cuda':
            torch.cuda.synchronize()

    def head(sync: bool = True) -> None:
        with torch.no_grad(), context():
            if not feats:
                feats.append(teacher().extract_feat(inputs))
            teacher().decode_head.forward(feats[0])
        if sync and args.device == 'cuda':
            torch.cuda.synchronize()

    return {f'teacher full{suffix}': full, f'teacher head{suffix}': head}


def peak_memory(method: str, args: argparse.Namespace, teachers: dict,
                queue) -> None:
    """Peak memory a training step adds on top of the built model: CUDA's
    max allocated, or on CPU the growth of the process's peak RSS (each
    method in a fresh process)."""
    import torch
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    model, step = build(method, args, teachers)
    if args.device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for _ in range(3):
        step()
    if args.device == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 \
            - base
    queue.put(peak / 2**20)


def profile_step(step, method: str, args: argparse.Namespace) -> None:
    """torch.profiler over 3 steps of ``method``: the host's wall time
    against the GPU kernels' busy time (launch-bound when the host's is
    the larger), and the top kernels, into ``<profile>/<method>.txt``."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if args.device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    t = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(3):
            step()
    wall = (time.perf_counter() - t) / 3
    events = prof.key_averages()
    device_us = sum(e.self_device_time_total for e in events
                    if e.device_type == torch.autograd.DeviceType.CUDA)
    kernels = sum(e.count for e in events
                  if e.device_type == torch.autograd.DeviceType.CUDA)
    os.makedirs(args.profile, exist_ok=True)
    name = method.replace("'", 'p').replace('+', '_')
    with open(osp.join(args.profile, f'{name}.txt'), 'w') as f:
        f.write(f'{method}: wall {wall * 1e3:.1f} ms/step (profiled), GPU '
                f'kernels busy {device_us / 3e3:.1f} ms/step, '
                f'{kernels / 3:.0f} kernels/step\n')
        f.write(
            events.table(
                sort_by='self_device_time_total'
                if args.device == 'cuda' else 'self_cpu_time_total',
                row_limit=25))


def check_graph(args: argparse.Namespace, teachers: dict, queue) -> None:
    """Eager against CUDA-graphed training of FT, L'_D and EF+L'_D: the
    same init and batch, 4 steps each; the largest relative difference of
    the losses and of the final parameters."""
    import torch
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    out = {}
    for method in ('FT', "L'_D", "EF+L'_D"):
        runs = []
        for graphed in (False, True):
            run_args = argparse.Namespace(**{
                **vars(args), 'cuda_graph': graphed
            })
            model, step = build(method, run_args, teachers)
            losses = [{
                k: v.item()
                for k, v in step().items()
            } for _ in range(4)]
            params = [p.detach().float().clone() for p in model.parameters()]
            runs.append((losses, params))
            del model, step
        (la, pa), (lb, pb) = runs
        loss_diff = max(
            abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for a, b in zip(la, lb)
            for k in a)
        param_diff = max(
            ((x - y).abs().max() / x.abs().max().clamp_min(1e-12)).item()
            for x, y in zip(pa, pb))
        out[method] = dict(
            loss_rel_diff=loss_diff,
            param_rel_diff=param_diff,
            losses_eager=[sum(d.values()) for d in la],
            losses_graph=[sum(d.values()) for d in lb])
    queue.put(out)


def _child(ctx, target, *args):
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def make_teacher(args: argparse.Namespace, path: str, net: str = '') -> None:
    import torch
    from mmseg.registry import MODELS
    import mmseg_incremental  # noqa: F401
    torch.manual_seed(1)
    model = MODELS.build(model_cfg(args.model, args.old_classes, net))
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument(
        '--model',
        choices=['tiny', 'r101'],
        default=None,
        help='tiny DeepLab-v2 R18 (CPU default) or the '
        "paper's R101 (CUDA default)")
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--threads',
        type=int,
        default=int(os.environ.get('OMP_NUM_THREADS') or os.cpu_count()))
    parser.add_argument('--old-classes', type=int, default=16)
    parser.add_argument('--new-classes', type=int, default=17)
    parser.add_argument(
        '--ratio-clock',
        choices=['wall', 'cpu'],
        default=None,
        help='clock of time_ratio: the process\'s CPU time (default on the '
        'CPU: other jobs on a shared machine disturb it less) or wall time '
        '(default on CUDA)')
    parser.add_argument('--json', help='write the results here')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='autocast (bf16 where supported, else fp16) for the forward '
        'and the losses')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='the NHWC layout (what ChannelsLastHook does)')
    parser.add_argument(
        '--cuda-graph',
        action='store_true',
        help='encoders replayed from CUDA graphs (CudaGraphHook)')
    parser.add_argument(
        '--graph-check',
        action='store_true',
        help='with --cuda-graph: also train FT, L\'_D and EF+L\'_D 4 steps '
        'graphed and eager from the same init and compare (~40 s on a GPU)')
    parser.add_argument(
        '--cudnn-benchmark',
        action='store_true',
        help='torch.backends.cudnn.benchmark (mmseg\'s runtime default)')
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=list(METHODS),
        default=list(METHODS),
        help='methods to time (FT, the reference, is always added)')
    parser.add_argument(
        '--mmseg-loss',
        action='store_true',
        help=f'also time {", ".join(MMSEG_LOSS_OF)} with mmseg\'s own '
        'loss_by_feat (its host syncs), as "<method>' + MMSEG_LOSS + '"')
    parser.add_argument(
        '--profile',
        help='folder for a torch.profiler table of each timed method')
    parser.add_argument(
        '--mem-runs',
        type=int,
        default=1,
        help='CPU: the step memory is the median over this many fresh '
        'processes per method (one process\'s peak RSS varies by ~5 %% '
        'between identical runs on a shared machine)')
    args = parser.parse_args()
    if 'FT' not in args.methods:
        args.methods.insert(0, 'FT')
    for method in list(args.methods):  # each method's reference too
        if reference(method) not in args.methods:
            args.methods.insert(args.methods.index(method), reference(method))
    if args.cuda_graph and args.device != 'cuda':
        parser.error('--cuda-graph needs --device cuda')
    if args.graph_check and not args.cuda_graph:
        parser.error('--graph-check compares against --cuda-graph; add it')
    if args.mmseg_loss:
        args.methods += [
            m + MMSEG_LOSS for m in MMSEG_LOSS_OF if m in args.methods
        ]
    cuda = args.device == 'cuda'
    args.model = args.model or ('r101' if cuda else 'tiny')
    args.size = args.size or (321 if cuda else 128)
    args.batch = args.batch or (4 if cuda else 8)
    args.iters = args.iters or 30
    args.ratio_clock = args.ratio_clock or ('wall' if cuda else 'cpu')

    ctx = mp.get_context('spawn')
    with tempfile.TemporaryDirectory() as tmp:
        # M_{k-1} of each network a timed method trains.
        teachers = {
            net: osp.join(tmp, f'teacher{net}.pth')
            for net in {network(m)
                        for m in args.methods}
        }
        for net, path in teachers.items():
            proc = ctx.Process(target=make_teacher, args=(args, path, net))
            proc.start()
            proc.join()
        (times, cpu_times, ratios, memory, syncs, floor_s, floor_ratios,
         ratios_ft) = _child(ctx, time_all, args, teachers)
        if not memory:  # CPU: peak RSS growth, a fresh process per method
            memory = {
                m:
                statistics.median(
                    _child(ctx, peak_memory, m, args, teachers)
                    for _ in range(args.mem_runs))
                for m in args.methods
            }
        graph_check = _child(ctx, check_graph, args, teachers) \
            if args.cuda_graph and args.graph_check else None
    results = {
        m:
        dict(
            median_s=times[m],
            median_cpu_s=cpu_times[m],
            time_ratio=ratios[m],
            time_ratio_ft=ratios_ft[m],
            reference=reference(m),
            floor_s=floor_s[m],
            floor_ratio=floor_ratios[m],
            step_mem_mib=memory[m],
            mem_ratio=memory[m] / memory[reference(m)],
            host_syncs=syncs.get(m))
        for m in args.methods
    }
    print(f'device={args.device} model={args.model} '
          f'input={args.batch}x3x{args.size}x{args.size} '
          f'classes {args.old_classes}->{args.new_classes} '
          f'iters={args.iters} threads={args.threads} amp={args.amp} '
          f'channels_last={args.channels_last} '
          f'cuda_graph={args.cuda_graph} '
          f'cudnn_benchmark={args.cudnn_benchmark} '
          f'time/FT by {args.ratio_clock} time')
    print(f'{"method":22s} {"s/iter":>8s} {"time/FT":>8s} {"floor":>6s} '
          f'{"-floor":>6s} {"target":>9s} {"step MiB":>9s} {"mem/FT":>7s} '
          f'{"target":>6s} {"syncs":>5s}')
    for method, r in results.items():
        target = 'FT<=1.02x' if method == 'stock' else TARGETS.get(method, '')
        sync = '' if r['host_syncs'] is None else r['host_syncs']
        print(f'{method:22s} {r["median_s"]:8.4f} {r["time_ratio"]:8.3f} '
              f'{r["floor_ratio"]:6.3f} '
              f'{r["time_ratio"] - r["floor_ratio"]:+6.3f} '
              f'{target!s:>9s} {r["step_mem_mib"]:9.1f} '
              f'{r["mem_ratio"]:7.3f} {MEM_TARGETS.get(method, "")!s:>6s} '
              f'{sync!s:>5s}')
    for method, r in results.items():
        if r['reference'] != 'FT':
            print(f'{method}: time/FT, floor and mem/FT against '
                  f'"{r["reference"]}" (FT on its network); against FT: '
                  f'time {r["time_ratio_ft"]:.3f}')
    if 'stock' in ratios:
        print('FT / stock EncoderDecoder time: '
              f'{1 / ratios["stock"]:.3f}')
    if graph_check is not None:
        for method, r in graph_check.items():
            print(f'CUDA graph vs eager, {method}: losses within '
                  f'{r["loss_rel_diff"]:.2e}, parameters within '
                  f'{r["param_rel_diff"]:.2e} (relative, 4 steps)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    args=vars(args), results=results, graph_check=graph_check),
                f,
                indent=1)


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    main()
