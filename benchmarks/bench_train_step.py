"""Per-iteration time and peak memory of each ILT method, as ratios to FT.

All methods train the same DistillEncoderDecoder step (C_old -> C_new) on
the same random batch, in one run; each method is measured in its own
child process so that peak memory is its own. Stock mmseg
``EncoderDecoder`` (no teacher) is measured too: our FT must cost the same.

    python benchmarks/bench_train_step.py                 # CPU, tiny model
    python benchmarks/bench_train_step.py --device cuda   # R101, 321², batch 4
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
    'stock': None,
    'FT': dict(),
    "L'_D": dict(distill_output=dict(type='OutputDistillLoss',
                                     variant='ilt', pixel_mask='old')),
    "L''_D": dict(distill_feature=dict(type='FeatureDistillLoss',
                                       loss_weight=50.0)),
    'EF': dict(freeze_encoder=True),
    "EF+L'_D": dict(freeze_encoder=True,
                    distill_output=dict(type='OutputDistillLoss',
                                        variant='ilt', pixel_mask='old')),
    "L'_D+L''_D": dict(
        distill_output=dict(type='OutputDistillLoss', variant='ilt',
                            pixel_mask='old'),
        distill_feature=dict(type='FeatureDistillLoss', loss_weight=50.0)),
}
TARGETS = {"L'_D": 1.25, "L''_D": 1.30, "EF+L'_D": 0.60}


def model_cfg(device: str, num_classes: int) -> dict:
    from mmengine.config import Config
    if device == 'cuda':
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


def measure(method: str, args: argparse.Namespace, teacher: str,
            queue) -> None:
    import torch
    from mmseg.registry import MODELS
    import mmseg_incremental  # noqa: F401
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = model_cfg(args.device, args.new_classes)
    if METHODS[method] is not None:
        cfg.update(type='DistillEncoderDecoder', teacher_checkpoint=teacher,
                   **METHODS[method])
    model = MODELS.build(cfg).to(args.device)
    model.init_weights()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=1e-4, momentum=0.9,
                            weight_decay=1e-4)
    inputs, samples = batch(args.device, args.size, args.batch,
                            args.new_classes)

    def step():
        losses = model.loss(inputs, samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        loss.backward()
        optim.step()

    for _ in range(args.warmup):
        step()
    cuda = args.device == 'cuda'
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(args.iters):
        t = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put(dict(method=method, median_s=times[len(times) // 2],
                   peak_mib=peak, rss_growth_mib=(
                       resource.getrusage(resource.RUSAGE_SELF).ru_maxrss -
                       base_rss) / 1024))


def make_teacher(args: argparse.Namespace, path: str) -> None:
    import torch
    from mmseg.registry import MODELS
    import mmseg_incremental  # noqa: F401
    torch.manual_seed(1)
    model = MODELS.build(model_cfg('cpu', args.old_classes))
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--size', type=int, default=None)
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--old-classes', type=int, default=16)
    parser.add_argument('--new-classes', type=int, default=17)
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args()
    cuda = args.device == 'cuda'
    args.size = args.size or (321 if cuda else 128)
    args.batch = args.batch or (4 if cuda else 8)
    args.iters = args.iters or (30 if cuda else 15)

    ctx = mp.get_context('spawn')
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        teacher = osp.join(tmp, 'teacher.pth')
        p = ctx.Process(target=make_teacher, args=(args, teacher))
        p.start()
        p.join()
        for method in METHODS:
            queue = ctx.Queue()
            p = ctx.Process(target=measure,
                            args=(method, args, teacher, queue))
            p.start()
            res = queue.get()
            p.join()
            results[method] = res
    ft = results['FT']
    print(f'device={args.device} input={args.batch}x3x{args.size}x{args.size}'
          f' classes {args.old_classes}->{args.new_classes} '
          f'iters={args.iters} threads={args.threads}')
    print(f'{"method":12s} {"s/iter":>8s} {"time/FT":>8s} {"peak MiB":>9s} '
          f'{"mem/FT":>7s} {"target":>7s}')
    for method, r in results.items():
        r['time_ratio'] = r['median_s'] / ft['median_s']
        r['mem_ratio'] = r['peak_mib'] / ft['peak_mib']
        target = TARGETS.get(method, '')
        if method == 'stock':
            target = 'FT<=1.02x'
            r['ft_over_stock'] = ft['median_s'] / r['median_s']
        print(f'{method:12s} {r["median_s"]:8.4f} {r["time_ratio"]:8.3f} '
              f'{r["peak_mib"]:9.1f} {r["mem_ratio"]:7.3f} {target!s:>7s}')
    print(f'FT / stock EncoderDecoder time: '
          f'{results["stock"]["ft_over_stock"]:.3f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=1)


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    main()
