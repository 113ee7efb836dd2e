"""Visualizers: one per step's Runner, one for the whole experiment.

Every step's Runner logs its training curves through its own visualizer
into ``D/step_<k>/<timestamp>/vis_data`` (:func:`unique_visualizer`). The
experiment's per-step metrics go through one more visualizer, built from
the same config ``visualizer`` with ``save_dir=D`` and so written by the
same backends (:func:`experiment_visualizer`): one series per metric in
``D/vis_data``, one point per step (x = step k), on rank 0.
"""
import copy
import importlib
import uuid
from typing import List, Optional

from mmengine.config import Config, ConfigDict
from mmengine.visualization import Visualizer

from mmseg.registry import VISUALIZERS
from .summary import SUMMARY_METRICS

#: What the experiment uses when a config names no visualizer (mmengine's
#: Runner does the same: local files).
DEFAULT_VISUALIZER = dict(
    type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
#: The mmengine backend that needs the optional ``tensorboard`` package.
TENSORBOARD = 'TensorboardVisBackend'


def unique_visualizer(cfg: Config) -> None:
    """Give the config's visualizer a name of its own: mmengine hands an
    existing instance of a name (mmseg's is 'visualizer') to every later
    Runner of the process, with the first one's ``save_dir``."""
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer['name'] = \
            f'{cfg.get("experiment_name", "run")}_{uuid.uuid4().hex[:12]}'


def _visualizer_cfg(cfg: Config) -> dict:
    vis = cfg.get('visualizer')
    if vis is None:
        return copy.deepcopy(DEFAULT_VISUALIZER)
    if isinstance(vis, ConfigDict):
        return vis.to_dict()
    return copy.deepcopy(vis)


def _type_name(obj) -> str:
    kind = obj.get('type') if isinstance(obj, dict) else type(obj)
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return name.split('.')[-1]


def vis_backend_names(cfg: Config) -> List[str]:
    """The type names of the config's ``visualizer.vis_backends``."""
    vis = _visualizer_cfg(cfg)
    backends = vis.get('vis_backends') if isinstance(vis, dict) else None
    if isinstance(backends, dict):
        backends = [backends]
    return [_type_name(b) for b in backends or []]


def vis_backend_problem(cfg: Config) -> Optional[str]:
    """Why the config's backends cannot run here (None: they can).

    mmengine imports ``tensorboard`` only when a ``TensorboardVisBackend``
    first writes, and its message names neither this project's extra nor a
    version; this check runs before anything is trained or written.
    """
    if TENSORBOARD not in vis_backend_names(cfg):
        return None
    try:
        importlib.import_module('torch.utils.tensorboard')
    except ImportError as error:
        return (f'The config\'s visualizer names {TENSORBOARD}, but '
                f'tensorboard cannot be imported ({error}). Install the '
                'optional extra: pip install .[tensorboard] (from the '
                'repository; it pins the tested version), or drop '
                f'{TENSORBOARD} from visualizer.vis_backends.')
    return None


def check_vis_backends(cfg: Config) -> None:
    """Raise :class:`ImportError` with :func:`vis_backend_problem`'s
    message when the config's backends cannot run here."""
    problem = vis_backend_problem(cfg)
    if problem is not None:
        raise ImportError(problem)


def experiment_visualizer(cfg: Config, work_dir: str) -> Visualizer:
    """The config's visualizer (its type and ``vis_backends``; mmengine's
    ``Visualizer`` with a ``LocalVisBackend`` when it names none), writing
    into ``work_dir/vis_data``."""
    vis = _visualizer_cfg(cfg)
    vis['name'] = f'experiment_{uuid.uuid4().hex[:12]}'
    vis['save_dir'] = work_dir
    return VISUALIZERS.build(vis)


def step_scalars(step_summary: dict) -> dict:
    """The scalars of one ``summary.json`` step: its metrics by their
    summary names (``mIoU``, ``mIoU_old``, ``mIoU_new``, ``hIoU``, ...) and
    each class's IoU as ``IoU/<class>``; undefined (null) values are left
    out."""
    metrics = step_summary['metrics']
    out = {
        k: metrics[k]
        for k in SUMMARY_METRICS if metrics.get(k) is not None
    }
    for name, value in (metrics.get('IoU') or {}).items():
        if value is not None:
            out[f'IoU/{name}'] = value
    return out


def log_step_metrics(visualizer: Visualizer, step_summary: dict) -> None:
    """Write one step's metrics through every backend, at x = step k."""
    visualizer.add_scalars(
        step_scalars(step_summary), step=int(step_summary['step']))
