"""Which checkpoint a stopped step resumes from.

``D/step_<k>/last_checkpoint`` names the step's newest checkpoint. A run
killed while mmengine's own ``CheckpointHook`` saved (or a disk that lost
a file) can leave it naming a deleted or a truncated file; resuming from
it would fail. :func:`find_resume_checkpoint` checks the named file and
otherwise falls back to the newest loadable ``iter_<n>.pth`` of the step,
or to none (the step then restarts from its teacher).
"""
import os
import os.path as osp
import re
import zipfile
from typing import List, NamedTuple, Optional

import torch

#: mmengine's checkpoint name of an iteration-based schedule.
FILENAME_TMPL = 'iter_{}.pth'


class ResumePoint(NamedTuple):
    """Where a step resumes.

    Args:
        checkpoint (str, optional): The checkpoint to resume from; None to
            train the step from its start.
        problem (str): What was wrong with ``last_checkpoint`` (``''`` when
            it names a loadable file).
    """
    checkpoint: Optional[str]
    problem: str


def is_loadable(path: str) -> bool:
    """Whether ``path`` is a whole checkpoint: a zip archive (what
    ``torch.save`` writes) whose every member passes its CRC, or an old
    non-zip checkpoint that ``torch.load`` reads."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        torch.load(path, map_location='cpu', weights_only=True)
        return True
    except Exception:  # any unreadable file: truncated, garbage, no access
        return False


def _checkpoints(step_dir: str, filename_tmpl: str) -> List[str]:
    """The step's ``iter_<n>.pth`` files, newest (highest n) first."""
    head, tail = filename_tmpl.split('{}')
    pattern = re.compile(re.escape(head) + r'(\d+)' + re.escape(tail) + '$')
    found = []
    for name in os.listdir(step_dir):
        match = pattern.match(name)
        if match:
            found.append((int(match.group(1)), osp.join(step_dir, name)))
    return [path for _, path in sorted(found, reverse=True)]


def find_resume_checkpoint(step_dir: str,
                           filename_tmpl: str = FILENAME_TMPL) -> ResumePoint:
    """The checkpoint a stopped step resumes from.

    Args:
        step_dir (str): The step's work dir ``D/step_<k>``.
        filename_tmpl (str): The checkpoint names (``CheckpointHook``'s
            ``filename_tmpl``). Defaults to ``'iter_{}.pth'``.

    Returns:
        ResumePoint: The checkpoint named by ``last_checkpoint`` if it is
        loadable, else the newest loadable one of the step, else None;
        with what was wrong.
    """
    if not osp.isdir(step_dir):
        return ResumePoint(None, f'{step_dir} does not exist')
    named = None
    last = osp.join(step_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
    if named and is_loadable(named):
        return ResumePoint(named, '')
    if not named:
        problem = f'{step_dir} has no last_checkpoint'
    elif osp.exists(named):
        problem = f'last_checkpoint names {named}, which is unreadable'
    else:
        problem = f'last_checkpoint names {named}, which is missing'
    for path in _checkpoints(step_dir, filename_tmpl):
        if path != named and is_loadable(path):
            return ResumePoint(path, problem)
    return ResumePoint(None, problem)
