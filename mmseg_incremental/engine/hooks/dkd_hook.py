"""DKD's optimizer at steps k >= 1: no weight decay but the new rows'."""
import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapperDict

from mmseg.registry import HOOKS

from ...models.terms.dkd import DKDTerm
from .runner_model import runner_model


@HOOKS.register_module()
class DKDHook(Hook):
    """Give every optimizer parameter group the ``weight_decay`` of the
    step's ``DKDTerm`` (0: DKD's steps k >= 1 have no weight decay on the
    backbone, the ASPP and the old classifiers, ``train_voc.py:127-135`` of
    ``cvlab-yonsei/DKD``; the new rows get theirs from the term's
    ``loss_wd_new``). A model without a ``DKDTerm``, or a term whose
    ``weight_decay`` is None: nothing happens.

    It runs at ``before_train``, after the Runner built the optimizer and
    loaded a resumed checkpoint (whose groups hold the same value), so a
    resumed step trains as an uninterrupted one. The term declares this
    hook (``training_hooks``): planning adds it to steps k >= 1 and
    deployment drops it.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        model = runner_model(runner)
        terms = model.terms_of_type(DKDTerm) if hasattr(
            model, 'terms_of_type') else []
        decays = {t.weight_decay for t in terms} - {None}
        if not decays:
            return
        if len(decays) > 1:
            raise ValueError('The DKDTerms of this step disagree on '
                             f'weight_decay: {sorted(decays)}.')
        decay = decays.pop()
        wrapper = runner.optim_wrapper
        wrappers = list(wrapper.values()) if isinstance(
            wrapper, OptimWrapperDict) else [wrapper]
        for item in wrappers:
            for group in item.optimizer.param_groups:
                group['weight_decay'] = decay
        print_log(
            f'DKD: weight decay {decay} on every parameter group (the new '
            'classifier rows: DKDTerm.new_class_weight_decay).',
            logger='current',
            level=logging.INFO)
