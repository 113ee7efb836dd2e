"""What produced a run's numbers, recorded with them in ``summary.json``.

Two numbers are comparable only when the code, the library versions and
the data behind them are known: :func:`provenance` records the package
version and, run from a git checkout, its commit (and whether the tree had
uncommitted changes), the versions of torch / mmcv / mmengine / mmseg, the
device and world size, the seed and the content key of the step-0 training
data (``data_content_key``). ``tools/compare_runs.py`` says which of these
differ between the runs it compares (:func:`provenance_differences`).
"""
import os.path as osp
import subprocess
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dist import get_world_size

#: The provenance keys that make two runs' numbers incomparable when they
#: differ, with the words a comparison uses for them.
COMPARED = (('data', 'step-0 data'), ('git_commit', 'code (git commit)'),
            ('version', 'package version'), ('torch', 'torch'),
            ('mmcv', 'mmcv'), ('mmengine', 'mmengine'), ('mmseg', 'mmseg'),
            ('device', 'device'), ('world_size', 'world size'), ('seed',
                                                                 'seed'))


def _git(*args: str) -> Optional[str]:
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    if not osp.exists(osp.join(root, '.git')):
        return None
    try:
        out = subprocess.run(['git', '-C', root, *args],
                             capture_output=True,
                             text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(module: str) -> Optional[str]:
    try:
        return __import__(module).__version__
    except Exception:  # not installed, or without a version
        return None


def provenance(cfg: Config, data_key: Optional[str] = None) -> dict:
    """The provenance of a run of ``cfg`` in this process (see module
    docstring); ``data_key``: the step-0 data's content key."""
    from ..version import __version__
    status = _git('status', '--porcelain', '--untracked-files=no')
    device = 'cpu'
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    return dict(
        version=__version__,
        git_commit=_git('rev-parse', 'HEAD'),
        git_dirty=None if status is None else bool(status),
        torch=torch.__version__,
        mmcv=_version('mmcv'),
        mmengine=_version('mmengine'),
        mmseg=_version('mmseg'),
        device=device,
        world_size=get_world_size(),
        seed=(cfg.get('randomness') or {}).get('seed'),
        data=data_key)


def provenance_differences(records: Sequence[Optional[Dict]]) -> List[str]:
    """What differs between runs' provenance records, as words (``'mmseg
    (1.2.2, 1.2.1)'``); runs written before provenance are named too."""
    if any(r is None for r in records):
        return ['provenance (some runs predate its record)']
    out = []
    for key, words in COMPARED:
        values = [r.get(key) for r in records]
        if len(set(map(str, values))) > 1:
            shown = ', '.join(str(v)[:12] for v in values)
            out.append(f'{words} ({shown})')
    return out
