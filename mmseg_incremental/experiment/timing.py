"""Seconds per iteration of a previous run, for ``--dry-run``'s estimate.

The source is what mmengine's ``LoggerHook`` already writes for every
step's Runner with the default ``LocalVisBackend``:
``D/step_<k>/<timestamp>/vis_data/scalars.json``, one JSON line per logged
training iteration whose ``time`` is the mean wall time of the iterations
since the previous log line (data loading included; validation and the
set-up of a step are not). A finished, stopped or resumed run (one
``<timestamp>`` folder per start) all qualify; a step reused from the
step-0 store trained nothing here and has no record.

Step k's seconds per iteration are the mean of its logged ``time``
values. A step without a record borrows the mean over the recorded steps
of its kind (step 0 trains without a teacher; steps k >= 1 run one), and
failing that over all recorded steps.
"""
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Optional


def _train_times(path: str) -> List[float]:
    """The ``time`` of every logged training iteration in one
    ``scalars.json`` (validation lines carry no ``loss``)."""
    times = []
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut by a kill
                continue
            if isinstance(record, dict) and 'loss' in record and \
                    isinstance(record.get('time'), (int, float)):
                times.append(float(record['time']))
    return times


def recorded_times(work_dir: str) -> Dict[int, List[float]]:
    """Step k -> the ``time`` values logged while training it in
    ``work_dir`` (steps without any are left out)."""
    out: Dict[int, List[float]] = {}
    pattern = osp.join(work_dir, 'step_*', '*', 'vis_data', 'scalars.json')
    for path in sorted(glob.glob(pattern)):
        step_dir = osp.basename(osp.dirname(osp.dirname(osp.dirname(path))))
        match = re.fullmatch(r'step_(\d+)', step_dir)
        times = _train_times(path)
        if match and times:
            out.setdefault(int(match.group(1)), []).extend(times)
    return out


def _mean(values: List[float]) -> float:
    return sum(values) / len(values)


def seconds_per_iter(times: Dict[int, List[float]],
                     step: int) -> Optional[float]:
    """Step ``step``'s seconds per iteration from :func:`recorded_times`:
    its own mean, else that of the recorded steps of its kind (0 / >= 1),
    else that of all; None without any record."""
    if times.get(step):
        return _mean(times[step])
    same_kind = [
        t for k, ts in times.items() if (k > 0) == (step > 0) for t in ts
    ]
    if same_kind:
        return _mean(same_kind)
    every = [t for ts in times.values() for t in ts]
    return _mean(every) if every else None
