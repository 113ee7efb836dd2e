"""A step's deployable config: M_k as a plain mmseg ``EncoderDecoder``.

A step config trains M_k as an :class:`IncrementalEncoderDecoder`, which
loads its teacher M_{k-1} from the previous step's folder. A step
checkpoint holds only M_k (``backbone.*``, ``decode_head.*``), so inference
and evaluation need none of that: :func:`deploy_config` drops the teacher,
the distillation terms and the training-only hooks -- all read off the
segmentor's and its terms' declarations
(:class:`~mmseg_incremental.models.segmentors.ModelDeclarations`) -- and
keeps the model, preprocessor and the step's val/test data. The result runs
with mmseg's own ``init_model``, ``MMSegInferencer`` and ``tools/test.py``
from the step's folder moved anywhere.
"""
import copy

from mmengine.config import Config

from mmseg.registry import MODELS


def deploy_config(step_cfg: Config) -> Config:
    """The inference/evaluation config of a trained step.

    Args:
        step_cfg (Config): The step's config (``step_config.py``).

    Returns:
        Config: The same config with ``model.type='EncoderDecoder'``, no
        teacher or distillation arguments, no pretrained weights to fetch,
        no ``load_from``/``resume`` and no training-only hooks.
    """
    from ..models.segmentors import (IncrementalEncoderDecoder,
                                     model_declarations)
    cfg = Config(copy.deepcopy(step_cfg.to_dict()), filename=step_cfg.filename)
    model = cfg.model
    kind = model.get('type')
    cls = MODELS.get(kind) if isinstance(kind, str) else None
    hooks = ()
    if isinstance(cls, type) and issubclass(cls, IncrementalEncoderDecoder):
        declared = model_declarations(model)
        for key in declared.training_only_keys:
            model.pop(key, None)
        model['type'] = 'EncoderDecoder'
        hooks = declared.training_hooks
    model['pretrained'] = None
    if isinstance(model.get('backbone'), dict):
        model['backbone'].pop('init_cfg', None)
        model['backbone'].pop('pretrained', None)
    cfg.load_from = None
    cfg.resume = False
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', []) or []
        if h.get('type') not in hooks
    ]
    return cfg
