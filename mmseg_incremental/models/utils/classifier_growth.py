"""Classifier growth: start M_k from M_{k-1} with |S_k| outputs.

M_{k-1} (the teacher) has C_old = |S_{k-1}| outputs, M_k (the student)
C_new = |S_k|; output index c < C_old is the same class in both. Every tensor
of the student that differs from the teacher's only in dim 0 (C_old against
C_new) is a classifier tensor: its first C_old rows are copied from the
teacher; its C_new - C_old new rows (the classes of U_k) are either left as
initialised (``'default'``) or set as MiB does (``'background'``). Every other
tensor is copied whole.
"""
import math
from typing import Dict, List, Mapping

import torch
import torch.nn as nn
from torch import Tensor

NEW_CLASS_INITS = ('default', 'background')


def infer_num_old_classes(student_state: Mapping[str, Tensor],
                          teacher_state: Mapping[str, Tensor],
                          num_classes: int,
                          prefix: str = 'decode_head.') -> int:
    """Read C_old off the classifier tensors of a teacher's state dict.

    The classifier tensors are the student's tensors under ``prefix`` whose
    dim 0 is ``num_classes``; C_old is the dim 0 of the teacher's tensors at
    the same keys that differ from the student's only in dim 0.

    Args:
        student_state (Mapping[str, Tensor]): The student's state dict.
        teacher_state (Mapping[str, Tensor]): The teacher's state dict.
        num_classes (int): C_new, the student's number of outputs.
        prefix (str): Where the classifier lives. Defaults to
            ``'decode_head.'``.

    Returns:
        int: C_old (equal to ``num_classes`` when no tensor differs).
    """
    counts = {}
    for key, value in student_state.items():
        if not key.startswith(prefix) or value.dim() == 0 \
                or value.shape[0] != num_classes:
            continue
        if key not in teacher_state:
            raise KeyError(f'The teacher checkpoint has no {key!r}; it must '
                           'come from the same architecture as the student '
                           '(same backbone/decode_head config).')
        old = teacher_state[key]
        if old.shape == value.shape:
            continue
        if old.dim() != value.dim() or old.shape[1:] != value.shape[1:]:
            raise ValueError(f'Teacher tensor {key!r} has shape '
                             f'{tuple(old.shape)}, the student\'s '
                             f'{tuple(value.shape)}; they may differ only in '
                             'dim 0 (the class count). Check the config.')
        counts[key] = old.shape[0]
    if not counts:
        return num_classes
    if len(set(counts.values())) > 1:
        raise ValueError('The teacher checkpoint\'s classifier tensors '
                         f'disagree on the class count: {counts}.')
    return next(iter(counts.values()))


def grow_classifier_(student: nn.Module,
                     teacher_state: Mapping[str, Tensor],
                     num_old_classes: int,
                     new_class_init: str = 'default') -> List[str]:
    """Copy a teacher's weights into a student, growing the classifier.

    Runs in place under ``torch.no_grad()``.

    - Tensors of equal shape are copied whole.
    - Tensors that differ only in dim 0 (C_old rows in the teacher, C_new in
      the student) get their first C_old rows copied; the new rows are
      left as they are (``'default'``: the student's fresh initialisation)
      or, with ``'background'`` (MiB, Cermelli et al. 2020), become copies
      of row 0 (the background) while the biases of the background and of
      the |U_k| new classes are lowered by log(|U_k| + 1) so that the
      background's probability is shared among them. When several biased
      classifier layers are *summed* into the logits (``DeepLabV2Head``'s
      four branches), each bias is lowered by log(|U_k| + 1) / B (B = the
      number of such layers), which lowers the logit by log(|U_k| + 1).

    Args:
        student (nn.Module): The model to fill (C_new outputs).
        teacher_state (Mapping[str, Tensor]): The teacher's state dict with
            the same keys (C_old outputs).
        num_old_classes (int): C_old.
        new_class_init (str): ``'default'`` or ``'background'``.
            Defaults to ``'default'``.

    Returns:
        list[str]: The keys of the grown (classifier) tensors.
    """
    if new_class_init not in NEW_CLASS_INITS:
        raise ValueError(f'new_class_init={new_class_init!r} is unknown; use '
                         "'default' (fresh rows) or 'background' (MiB).")
    state: Dict[str, Tensor] = student.state_dict()
    missing = sorted(set(state) - set(teacher_state))
    unexpected = sorted(set(teacher_state) - set(state))
    if missing or unexpected:
        raise KeyError(
            'Teacher and student state dicts differ: missing in '
            f'the teacher {missing[:5]}, unexpected {unexpected[:5]}'
            '; both must be the same architecture.')
    grown = []
    with torch.no_grad():
        for key, old in teacher_state.items():
            new = state[key]
            if new.shape == old.shape:
                new.copy_(old)
            elif (new.dim() == old.dim() and new.dim() > 0
                  and new.shape[1:] == old.shape[1:]
                  and old.shape[0] == num_old_classes
                  and new.shape[0] > num_old_classes):
                new[:num_old_classes].copy_(old)
                grown.append(key)
            else:
                raise ValueError(
                    f'Cannot grow {key!r} from {tuple(old.shape)} to '
                    f'{tuple(new.shape)}: only dim 0 may change, from '
                    f'C_old={num_old_classes} to a larger C_new.')
        if new_class_init == 'background' and grown:
            _background_init_(state, grown, num_old_classes)
    return grown


def _background_init_(state: Dict[str, Tensor], grown: List[str],
                      num_old_classes: int) -> None:
    """MiB's initialisation of the new rows (in place, under no_grad)."""
    num_new = state[grown[0]].shape[0] - num_old_classes
    # The biases of conv/linear classifier layers (a '.weight' of dim > 1
    # beside them), not e.g. a BN over the class scores.
    biases = []
    for key in grown:
        weight = key[:-len('bias')] + 'weight'
        if key.endswith(
                '.bias') and weight in grown and state[weight].dim() > 1:
            biases.append(key)
    if not biases:
        raise ValueError("new_class_init='background' shifts the classifier "
                         'bias by log(|U_k|+1) but the classifier has no '
                         "bias; use new_class_init='default'.")
    for key in grown:
        state[key][num_old_classes:] = state[key][0]
    shift = math.log(num_new + 1) / len(biases)
    for key in biases:
        state[key][num_old_classes:] -= shift
        state[key][0] -= shift
