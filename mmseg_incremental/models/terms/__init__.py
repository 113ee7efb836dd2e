"""Distillation terms: one file per method (ILT, MiB, PLOP, DKD)."""
from .base import DistillBatch, DistillTerm, TeacherOutputs, term_class
from .dkd import DKDTerm
from .ilt import FeatureDistillTerm, OutputDistillTerm
from .mib import UnbiasedCETerm, UnbiasedKDTerm
from .plop import LocalPODTerm, PseudoLabelTerm

__all__ = [
    'DistillTerm', 'DistillBatch', 'TeacherOutputs', 'term_class',
    'OutputDistillTerm', 'FeatureDistillTerm', 'UnbiasedCETerm',
    'UnbiasedKDTerm', 'LocalPODTerm', 'PseudoLabelTerm', 'DKDTerm'
]
