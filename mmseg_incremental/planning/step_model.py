"""The model of step k: |S_k| outputs and, for k >= 1, the incremental
segmentor of the method with M_{k-1} as teacher.

What a method needs beyond its own arguments (training-only hooks, |S_k|
with a fixed classifier, the L'_D resolution) is read off the segmentor's
and its terms' declarations (:func:`model_declarations`), so that no list
of method names is kept here.
"""
import copy
from typing import Optional

from mmengine.config import Config

from ..tasks import IncrementalTask

#: How the classifier is sized: |S_k| outputs, or every class from step 0.
CLASSIFIERS = ('grow', 'fixed')


def add_hook(step_cfg: Config, hook: dict) -> None:
    """Add ``hook`` to ``custom_hooks`` unless one of its type is there."""
    hooks = list(step_cfg.get('custom_hooks', []) or [])
    if not any(h.get('type') == hook['type'] for h in hooks):
        hooks.append(hook)
    step_cfg.custom_hooks = hooks


def set_step_model(step_cfg: Config,
                   task: IncrementalTask,
                   step: int,
                   teacher_checkpoint: Optional[str],
                   classifier: str = 'grow',
                   incremental: Optional[dict] = None,
                   distill_resolution: Optional[str] = None) -> None:
    """Size the heads for step ``step`` and, for k >= 1, make the model the
    method's incremental segmentor with M_{k-1} as teacher.

    Args:
        step_cfg (Config): The step's config, edited in place.
        task (IncrementalTask): The experiment's task.
        step (int): The step k.
        teacher_checkpoint (str, optional): M_{k-1}'s checkpoint (k >= 1).
        classifier (str): ``'grow'`` or ``'fixed'``.
        incremental (dict, optional): The segmentor arguments of the
            method (the experiment's ``incremental``).
        distill_resolution (str, optional): L'_D's resolution for every
            term that has one (None: the terms' own).
    """
    from ..models.segmentors.declarations import (check_model,
                                                  model_declarations)
    model = step_cfg.model
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier={classifier!r} is unknown; use 'grow' "
                         "(|S_k| outputs at step k) or 'fixed' (an output "
                         "for every class of the task from step 0, the "
                         "authors' code).")
    last = step if classifier == 'grow' else task.num_steps - 1
    outputs = task.num_classes(last)
    for head in ('decode_head', 'auxiliary_head'):
        heads = model.get(head)
        for h in heads if isinstance(heads, list) else [heads]:
            if h is not None:
                h['num_classes'] = outputs
    if step == 0:
        return
    if not teacher_checkpoint:
        raise ValueError(f'Step {step} needs the checkpoint of M_{step-1}'
                         ' as teacher_checkpoint.')
    model.update(copy.deepcopy(incremental or {}))
    model['type'] = model_declarations(model).model_type
    declared = model_declarations(model)
    check_model(model)
    model['teacher_checkpoint'] = teacher_checkpoint
    if distill_resolution is not None:
        # The authors' code computes L'_D on logits upsampled to the labels;
        # a top-level scalar, so a setup can choose it for every method.
        for term in declared.resolution_terms(model):
            term['resolution'] = distill_resolution
    model['num_old_classes'] = len(task.old_classes(step))
    # The student starts from M_{k-1}: no ImageNet/COCO init needed.
    model['pretrained'] = None
    if 'backbone' in model:
        model['backbone'].pop('init_cfg', None)
        model['backbone'].pop('pretrained', None)
    for hook in declared.training_hooks:
        add_hook(step_cfg, dict(type=hook))
    if classifier == 'fixed' and declared.needs_num_seen_classes:
        # POD's class factor and the entropy normaliser need |S_k|, which
        # a fixed classifier's size does not tell.
        model['num_seen_classes'] = task.num_classes(step)
