"""Run several experiment configs on one dataset, sharing step 0.

The drivers (``tools/demo.py``, ``tools/paper_findings.py``) compare
methods: the same task with different losses. They run each config as an
:class:`IncrementalExperiment` under one work dir, all pointing at one
data root and one step-0 store, so M_0 is trained once per task and reused
by every method whose step 0 is the same.
"""
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.logging import print_log

from ..utils import load_config
from ..experiment import IncrementalExperiment


def run_dir_name(config: str) -> str:
    """The run folder of ``config``: its file name without ``.py``."""
    return osp.splitext(osp.basename(config))[0]


def run_methods(
        configs: Sequence[str],
        work_dir: str,
        data_root: str,
        step0_store: Optional[str] = None,
        cfg_options: Optional[Dict] = None,
        on_summary: Optional[Callable[[str, dict], None]] = None) -> List[str]:
    """Run (or resume) every experiment config; return their work dirs.

    Each config runs in ``<work_dir>/<config file name>`` with
    ``resume=True``, so calling again continues what was interrupted and
    skips what is done.

    Args:
        configs (Sequence[str]): Experiment config files.
        work_dir (str): Parent folder of the runs.
        data_root (str): The dataset's root, set as the experiment's
            ``data_root`` (which the plan applies to every dataset).
        step0_store (str, optional): The shared step-0 store. Defaults to
            ``<work_dir>/step0_store``.
        cfg_options (dict, optional): Overrides merged into every config,
            as ``--cfg-options`` (e.g. ``{'iters_per_class': 25}``).
            Defaults to None.
        on_summary (callable, optional): Passed to
            :class:`IncrementalExperiment` (e.g.
            ``mmseg_incremental.reporting.write_report``). Defaults to None.

    Returns:
        list[str]: The run dirs, in the order of ``configs``.
    """
    names = [run_dir_name(c) for c in configs]
    if len(set(names)) < len(names):
        raise ValueError(f'Config file names must differ (they name the run '
                         f'folders); got {list(configs)}.')
    store = step0_store or osp.join(work_dir, 'step0_store')
    run_dirs = []
    for config, name in zip(configs, names):
        start = time.perf_counter()
        cfg = load_config(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        cfg.data_root = data_root
        cfg.step0_store = store
        run_dir = osp.join(work_dir, name)
        IncrementalExperiment(
            cfg, run_dir, resume=True, on_summary=on_summary).run()
        print_log(
            f'{name}: done in {time.perf_counter() - start:.0f} s',
            logger='current')
        run_dirs.append(run_dir)
    return run_dirs
