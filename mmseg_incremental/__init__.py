"""mmseg-incremental: class-incremental semantic segmentation for MMSeg 1.x.

Importing the package registers every component into mmseg's registries
(scope ``mmseg``) and allowlists the globals of mmengine checkpoints for
``torch.load(weights_only=True)``.
"""
from . import utils  # noqa: F401  (first: safe checkpoint loading)
from . import datasets, engine, evaluation, models  # noqa: F401
from .tasks import IncrementalTask, get_task
from .version import __version__

__all__ = ['IncrementalTask', 'get_task', '__version__']
