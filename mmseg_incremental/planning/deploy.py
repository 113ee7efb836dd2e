"""A step's deployable config: M_k as a plain mmseg ``EncoderDecoder``.

A step config trains M_k as a :class:`DistillEncoderDecoder`, which loads
its teacher M_{k-1} from the previous step's folder. A step checkpoint
holds only M_k (``backbone.*``, ``decode_head.*``), so inference and
evaluation need none of that: :func:`deploy_config` drops the teacher, the
distillation terms and the training-only hooks, and keeps the model,
preprocessor and the step's val/test data. The result runs with mmseg's
own ``init_model``, ``MMSegInferencer`` and ``tools/test.py`` from the
step's folder moved anywhere.
"""
import copy

from mmengine.config import Config

#: DistillEncoderDecoder arguments that a plain EncoderDecoder lacks.
DISTILL_KEYS = ('teacher_checkpoint', 'distill_output', 'distill_feature',
                'freeze_encoder', 'new_class_init', 'num_old_classes',
                'teacher_cache', 'decode_loss', 'distill_pod', 'pseudo_label',
                'num_seen_classes')
#: Hooks that only make sense while training a step.
TRAINING_HOOKS = ('FreezeEncoderHook', 'PseudoLabelHook')


def deploy_config(step_cfg: Config) -> Config:
    """The inference/evaluation config of a trained step.

    Args:
        step_cfg (Config): The step's config (``step_config.py``).

    Returns:
        Config: The same config with ``model.type='EncoderDecoder'``, no
        teacher or distillation arguments, no pretrained weights to fetch,
        no ``load_from``/``resume`` and no training-only hooks.
    """
    cfg = Config(copy.deepcopy(step_cfg.to_dict()), filename=step_cfg.filename)
    model = cfg.model
    if model.get('type') == 'DistillEncoderDecoder':
        model['type'] = 'EncoderDecoder'
    for key in DISTILL_KEYS:
        model.pop(key, None)
    model['pretrained'] = None
    if isinstance(model.get('backbone'), dict):
        model['backbone'].pop('init_cfg', None)
        model['backbone'].pop('pretrained', None)
    cfg.load_from = None
    cfg.resume = False
    hooks = [
        h for h in cfg.get('custom_hooks', []) or []
        if h.get('type') not in TRAINING_HOOKS
    ]
    cfg.custom_hooks = hooks
    return cfg
