"""EF with mmengine's Runner: freeze the encoder and prove it stayed put."""
import hashlib
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS
from .runner_model import runner_model

DATA_BATCH = Optional[Union[dict, tuple, list]]


def _fingerprint(modules: Dict[str, nn.Module]) -> Dict[str, str]:
    """SHA-1 of the dtype, shape and bytes of every parameter and buffer."""
    out = {}
    for prefix, module in modules.items():
        for name, tensor in module.state_dict().items():
            digest = hashlib.sha1(
                f'{tensor.dtype}{tuple(tensor.shape)}'.encode())
            data = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(data.view(torch.uint8).numpy().tobytes())
            out[f'{prefix}.{name}'] = digest.hexdigest()
    return out


def _differing(a: Dict[str, str], b: Dict[str, str]) -> List[str]:
    """Names whose checksums differ or that only one side has."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


@HOOKS.register_module()
class FreezeEncoderHook(Hook):
    """EF (encoder frozen, only the decoder learns) checked end to end.

    mmengine's Runner builds the model, wraps it in DDP and builds the
    optimizer *before* any hook runs, and calls ``model.train()`` before
    every iteration. So this hook, at ``before_train`` (after the weights
    are initialised and any checkpoint is loaded):

    1. in a single process, freezes the encoder (``module_names`` of the
       model: the backbone and the neck if any) of any segmentor, a stock
       ``EncoderDecoder`` included: ``requires_grad=False`` and ``grad=None``
       (optimizers skip parameters without a gradient, so neither weight
       decay nor momentum can move them);
    2. under DDP (or another wrapper) only checks that this is already so,
       since DDP registered its gradient hooks at construction: a parameter
       frozen afterwards would make DDP wait for a gradient that never
       comes. It raises a clear error unless the model was frozen at
       construction (``model.freeze_encoder=True`` of
       ``DistillEncoderDecoder``, or e.g. ``backbone.frozen_stages`` of
       ResNet covering every stage) or ``find_unused_parameters=True`` is
       set (then the hook freezes, at the price of DDP's per-iteration
       graph traversal);
    3. records a checksum of the encoder's parameters **and buffers** (BN
       statistics) and puts the encoder in eval mode before every iteration
       (``model.train()`` undoes it);
    4. at ``after_train`` verifies the checksum and raises if anything moved.

    With a teacher (``DistillEncoderDecoder``: the model has ``teacher``,
    M_{k-1}), ``before_train`` also checks that the encoder it freezes *is*
    M_{k-1}'s, bit for bit: EF keeps the encoder the previous step left, so
    a checkpoint loaded over it (a leaked ``load_from``, a resume from
    another run) is an error, not a silent change of method.

    With ``DistillEncoderDecoder`` the model freezes itself
    (``freeze_encoder=True``, which also shares the encoder with the
    teacher); the hook then only verifies, and refuses
    ``freeze_encoder=False`` (which would compute a graph through the
    encoder for nothing).

    Args:
        module_names (Sequence[str]): Attributes of the model that form the
            encoder; missing or None ones (no neck) are skipped, but at least
            one must exist. Defaults to ``('backbone', 'neck')``.
        verify (bool): Check the checksum at ``after_train``.
            Defaults to True.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 module_names: Sequence[str] = ('backbone', 'neck'),
                 verify: bool = True) -> None:
        if isinstance(module_names, str) or not module_names:
            raise ValueError('module_names must be a non-empty sequence of '
                             "attribute names, e.g. ('backbone', 'neck'); got "
                             f'{module_names!r}.')
        self.module_names = tuple(module_names)
        self.verify = verify
        self._checksum: Optional[Dict[str, str]] = None

    def _modules_of(self, model: nn.Module) -> Dict[str, nn.Module]:
        """The encoder modules of ``model`` that exist (no neck: skipped)."""
        return {
            name: getattr(model, name)
            for name in self.module_names
            if getattr(model, name, None) is not None
        }

    def _encoder(self, runner) -> Dict[str, nn.Module]:
        model = runner_model(runner)
        modules = self._modules_of(model)
        if not modules:
            raise AttributeError(
                f'FreezeEncoderHook found none of {self.module_names} on '
                f'{type(model).__name__}; set module_names to the attributes '
                'that hold the encoder.')
        return modules

    def before_train(self, runner) -> None:
        """Freeze (or check) the encoder and record its checksum."""
        model = runner_model(runner)
        if getattr(model, 'freeze_encoder', None) is False:
            raise ValueError(
                f'FreezeEncoderHook is used with {type(model).__name__}'
                '(freeze_encoder=False); set model.freeze_encoder=True, which '
                'freezes the encoder at construction and shares it with the '
                'teacher (the hook then verifies it), or drop the hook.')
        modules = self._encoder(runner)
        trainable: List[nn.Parameter] = []
        names: List[str] = []
        for prefix, module in modules.items():
            for name, param in module.named_parameters():
                if param.requires_grad:
                    trainable.append(param)
                    names.append(f'{prefix}.{name}')
        if trainable and is_model_wrapper(runner.model) and not getattr(
                runner.model, 'find_unused_parameters', False):
            raise RuntimeError(
                f'FreezeEncoderHook: {len(names)} encoder parameters (e.g. '
                f'{names[0]}) still require grad, but the model was wrapped '
                f'in {type(runner.model).__name__} before this hook ran, so '
                'freezing them now would hang DDP. Freeze at construction '
                '(model.freeze_encoder=True with DistillEncoderDecoder) or '
                'set find_unused_parameters=True in the config.')
        for param in trainable:
            param.requires_grad_(False)
            param.grad = None
        if trainable:
            runner.logger.info(f'FreezeEncoderHook froze {len(trainable)} '
                               f'parameters of {", ".join(modules)}.')
        for module in modules.values():
            module.eval()
        self._checksum = _fingerprint(modules) if self.verify else None
        teacher = getattr(model, 'teacher', None)
        if self.verify and teacher is not None:
            self._check_teacher(runner, teacher)

    def _check_teacher(self, runner, teacher: nn.Module) -> None:
        """Raise unless the frozen encoder equals the teacher's (M_{k-1})."""
        old = _fingerprint(self._modules_of(teacher))
        differ = _differing(self._checksum, old)
        if differ:
            raise RuntimeError(
                f'FreezeEncoderHook: EF must keep M_{{k-1}}\'s encoder, but '
                f'{len(differ)} encoder tensors (e.g. {differ[:3]}) differ '
                "from the teacher's at the start of training. Something "
                'loaded other weights over the student (load_from, a resume '
                'checkpoint of another run); remove it or start the step '
                'from its teacher checkpoint.')
        runner.logger.info('FreezeEncoderHook: the frozen encoder equals '
                           f"M_{{k-1}}'s ({len(old)} tensors).")

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Put the encoder back in eval mode (BN statistics fixed)."""
        for module in self._encoder(runner).values():
            module.eval()

    def after_train(self, runner) -> None:
        """Raise if any frozen parameter or buffer changed in training."""
        if self._checksum is None:
            return
        now = _fingerprint(self._encoder(runner))
        moved = _differing(self._checksum, now)
        if moved:
            raise RuntimeError(
                f'FreezeEncoderHook: {len(moved)} frozen encoder tensors '
                f'changed during training (e.g. {moved[:3]}). Something '
                'trains or updates them (a custom optimizer, a hook, a BN '
                'layer put back in train mode); find it and freeze it too.')
        runner.logger.info('FreezeEncoderHook: the encoder is bit-identical '
                           f'after training ({len(now)} tensors).')
