"""Per-iteration time and peak memory of each ILT method, as ratios to FT.

All methods train the same DistillEncoderDecoder step (C_old -> C_new) on
the same random batch, in one run: step times round-robin in one process
(noise hits every method alike); the memory a step adds in the same
process on CUDA (peak statistics reset per method), in a fresh process
per method on CPU (peak RSS cannot be reset). Stock mmseg
``EncoderDecoder`` (no teacher) is measured too: our FT must cost the same.

    python benchmarks/bench_train_step.py                 # CPU, tiny model
    python benchmarks/bench_train_step.py --device cuda   # R101, 321², batch 4
    python benchmarks/bench_train_step.py --device cuda --amp  # bf16
    python benchmarks/bench_train_step.py --model r101 --size 65 --batch 1
"""
import argparse
import json
import multiprocessing as mp
import os
import os.path as osp
import resource
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = {
    'stock':
    None,
    'FT':
    dict(),
    "L'_D":
    dict(
        distill_output=dict(
            type='OutputDistillLoss', variant='ilt', pixel_mask='old')),
    "L''_D":
    dict(distill_feature=dict(type='FeatureDistillLoss', loss_weight=50.0)),
    'EF':
    dict(freeze_encoder=True),
    "EF+L'_D":
    dict(
        freeze_encoder=True,
        distill_output=dict(
            type='OutputDistillLoss', variant='ilt', pixel_mask='old')),
    "L'_D+L''_D":
    dict(
        distill_output=dict(
            type='OutputDistillLoss', variant='ilt', pixel_mask='old'),
        distill_feature=dict(type='FeatureDistillLoss', loss_weight=50.0)),
}
TARGETS = {"L'_D": 1.25, "L''_D": 1.30, "EF+L'_D": 0.60}  # time / FT


def model_cfg(model: str, num_classes: int) -> dict:
    from mmengine.config import Config
    if model == 'r101':
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs/_base_/models/deeplabv2_r101-d8.py'))
    else:
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs/_base_/models/deeplabv2_r18-tiny.py'))
    model = cfg.model.to_dict()
    model['decode_head']['num_classes'] = num_classes
    model['data_preprocessor'] = None
    return model


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
        s.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size)))
        samples.append(s)
    return inputs, samples


def build(method: str, args: argparse.Namespace, teacher: str):
    """The model of ``method`` (stock = mmseg EncoderDecoder) and its SGD."""
    import torch
    from mmseg.registry import MODELS
    import mmseg_incremental  # noqa: F401
    torch.manual_seed(0)
    cfg = model_cfg(args.model, args.new_classes)
    if METHODS[method] is not None:
        cfg.update(
            type='DistillEncoderDecoder',
            teacher_checkpoint=teacher,
            **METHODS[method])
    model = MODELS.build(cfg).to(args.device)
    model.init_weights()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)
    inputs, samples = batch(args.device, args.size, args.batch,
                            args.new_classes)

    def step() -> None:
        with torch.autocast(
                args.device, dtype=torch.bfloat16, enabled=args.amp):
            losses = model.loss(inputs, samples)
        loss = sum(v.float() for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        loss.backward()
        optim.step()
        if args.device == 'cuda':
            torch.cuda.synchronize()

    return model, step


def time_all(args: argparse.Namespace, teacher: str, queue) -> None:
    """Median step time of every method, round-robin in one process so that
    machine noise hits all methods alike. On CUDA also the memory a step
    adds (``max_memory_allocated`` after ``reset_peak_memory_stats``, per
    method, in the same process)."""
    import torch
    torch.set_num_threads(args.threads)
    steps = {m: build(m, args, teacher)[1] for m in METHODS}
    memory = {}
    for method, step in steps.items():
        for _ in range(args.warmup):
            step()
        if args.device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            step()
            memory[method] = (torch.cuda.max_memory_allocated() - base) / 2**20
    times = {m: [] for m in METHODS}
    for _ in range(args.iters):
        for method, step in steps.items():
            t = time.perf_counter()
            step()
            times[method].append(time.perf_counter() - t)
    queue.put(({m: sorted(v)[len(v) // 2] for m, v in times.items()}, memory))


def peak_memory(method: str, args: argparse.Namespace, teacher: str,
                queue) -> None:
    """Peak memory a training step adds on top of the built model: CUDA's
    max allocated, or on CPU the growth of the process's peak RSS (each
    method in a fresh process)."""
    import torch
    torch.set_num_threads(args.threads)
    model, step = build(method, args, teacher)
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


def _child(ctx, target, *args):
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def make_teacher(args: argparse.Namespace, path: str) -> None:
    import torch
    from mmseg.registry import MODELS
    import mmseg_incremental  # noqa: F401
    torch.manual_seed(1)
    model = MODELS.build(model_cfg(args.model, args.old_classes))
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
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--old-classes', type=int, default=16)
    parser.add_argument('--new-classes', type=int, default=17)
    parser.add_argument('--json', help='write the results here')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='bf16 autocast for the forward and the losses')
    args = parser.parse_args()
    cuda = args.device == 'cuda'
    args.model = args.model or ('r101' if cuda else 'tiny')
    args.size = args.size or (321 if cuda else 128)
    args.batch = args.batch or (4 if cuda else 8)
    args.iters = args.iters or (30 if cuda else 15)

    ctx = mp.get_context('spawn')
    with tempfile.TemporaryDirectory() as tmp:
        teacher = osp.join(tmp, 'teacher.pth')
        proc = ctx.Process(target=make_teacher, args=(args, teacher))
        proc.start()
        proc.join()
        times, memory = _child(ctx, time_all, args, teacher)
        if not memory:  # CPU: peak RSS growth, a fresh process per method
            memory = {
                m: _child(ctx, peak_memory, m, args, teacher)
                for m in METHODS
            }
    results = {
        m:
        dict(
            median_s=times[m],
            time_ratio=times[m] / times['FT'],
            step_mem_mib=memory[m],
            mem_ratio=memory[m] / memory['FT'])
        for m in METHODS
    }
    print(f'device={args.device} model={args.model} '
          f'input={args.batch}x3x{args.size}x{args.size} '
          f'classes {args.old_classes}->{args.new_classes} '
          f'iters={args.iters} threads={args.threads} amp={args.amp}')
    print(f'{"method":12s} {"s/iter":>8s} {"time/FT":>8s} {"step MiB":>9s} '
          f'{"mem/FT":>7s} {"target":>9s}')
    for method, r in results.items():
        target = 'FT<=1.02x' if method == 'stock' else TARGETS.get(method, '')
        print(f'{method:12s} {r["median_s"]:8.4f} {r["time_ratio"]:8.3f} '
              f'{r["step_mem_mib"]:9.1f} {r["mem_ratio"]:7.3f} '
              f'{target!s:>9s}')
    print('FT / stock EncoderDecoder time: '
          f'{times["FT"] / times["stock"]:.3f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=1)


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    main()
