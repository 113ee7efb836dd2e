"""A finished step's DataLoader workers are stopped before the next step:
otherwise the next step's ``gc.collect()`` (mmengine's dataset
``full_init``) reaps them with a 5 s join each (~41 s of set-up a step)."""
import multiprocessing as mp

import torch
from torch.utils.data import DataLoader, Dataset

from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.experiment.dataloader_workers import shutdown_workers
from test_experiment.utils import load, tiny_cfg


class _Zeros(Dataset):

    def __len__(self):
        return 64

    def __getitem__(self, index):
        return torch.full((3, 8, 8), float(index))


def test_shutdown_workers_stops_persistent_workers():
    loader = DataLoader(
        _Zeros(), batch_size=4, num_workers=2, persistent_workers=True)
    first = next(iter(loader))
    workers = list(loader._iterator._workers)
    assert all(w.is_alive() for w in workers)
    assert shutdown_workers(loader) == 2
    assert not any(w.is_alive() for w in workers)
    assert loader._iterator is None
    assert shutdown_workers(loader) == 0  # nothing left to stop
    again = next(iter(loader))  # the loader still works: new workers
    assert torch.equal(first, again)
    shutdown_workers(loader)


def test_experiment_leaves_no_worker_behind(embedded_voc, tmp_path):
    cfg = tiny_cfg(
        'bench_15-1_ld.py',
        embedded_voc,
        max_step=1,
        **{
            'train_dataloader.num_workers': 2,
            'train_dataloader.persistent_workers': True,
            'val_dataloader.num_workers': 2,
            'val_dataloader.persistent_workers': True,
        })
    work_dir = tmp_path / 'exp'
    IncrementalExperiment(cfg, str(work_dir)).run()
    assert mp.active_children() == []
    for step in (0, 1):
        timing = load(str(work_dir / f'step_{step}' / 'step_done.json'))
        assert timing['timing']['train_iters'] > 0
    log = ''.join(p.read_text() for p in work_dir.glob('step_1/*/*.log'))
    assert 'Stopped 4 DataLoader worker processes' in log
