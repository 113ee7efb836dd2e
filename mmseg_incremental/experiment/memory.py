"""Choose a step's exemplar memory before it trains
(:mod:`mmseg_incremental.datasets.exemplar_memory`)."""
import copy
import os
import os.path as osp
from typing import Dict

from mmengine.config import Config
from mmengine.logging import print_log

from ..datasets.exemplar_memory import (balanced_memory, matching_memory,
                                        memory_record, read_memory,
                                        write_memory)
from ..planning import iter_incremental_datasets
from ..planning.plan import MEMORY_FILE
from ..tasks import IncrementalTask
from .check_splits import step_dataset


def memory_seed(cfg: Config, step: int) -> int:
    """The seed of step ``step``'s choice: the config's seed and the step."""
    seed = (cfg.get('randomness') or {}).get('seed') or 0
    return int(seed) * 1009 + step


def choose_memory(previous_cfg: Config, task: IncrementalTask, step: int,
                  previous_dir: str, size: int, seed: int) -> Dict:
    """The memory record of step ``step``: candidates from the memory of
    step k-1 (in ``previous_dir``) and the training split of step k-1
    (``previous_cfg``'s, without its own memory)."""
    candidates = []
    if step > 1:
        previous = read_memory(osp.join(previous_dir, MEMORY_FILE))
        candidates += [(n, list(c)) for n, c in previous['candidates']]
    loader = copy.deepcopy(previous_cfg.train_dataloader)
    for ds in iter_incremental_datasets(loader):
        ds.pop('memory_file', None)
    known = {name for name, _ in candidates}
    candidates += [(name, labels)
                   for name, labels in step_dataset(loader).candidate_labels()
                   if name not in known]
    classes = sorted(set(task.old_classes(step)) - {0})
    chosen = balanced_memory(candidates, classes, size, seed)
    return memory_record(step, size, seed, classes, chosen)


def ensure_memory(previous_cfg: Config, task: IncrementalTask, step: int,
                  step_dir: str, previous_dir: str, size: int,
                  seed: int) -> str:
    """``step_dir/memory.json``: reused when it was chosen for this step,
    size and seed (a resumed step), else chosen and written atomically.
    Call on one process (rank 0)."""
    path = osp.join(step_dir, MEMORY_FILE)
    if matching_memory(path, step, size, seed) is not None:
        print_log(f'Step {step}: exemplar memory reused from {path}.',
                  logger='current')
        return path
    record = choose_memory(previous_cfg, task, step, previous_dir, size, seed)
    os.makedirs(step_dir, exist_ok=True)
    write_memory(path, record)
    counts = {c: sum(c in labels for _, labels in record['candidates'])
              for c in record['classes']}
    print_log(
        f'Step {step}: exemplar memory of {len(record["memory"])} images '
        f'(asked {size}) -> {path}; images per old class: {counts}.',
        logger='current')
    return path
