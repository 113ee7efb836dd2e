"""Studies and drivers built on the run loop (:mod:`..experiment`): several
methods on one data root sharing step 0, the knob ablation, and the
pretraining of the embedded benchmark's backbone. Nothing below
``experiment/`` imports from here."""
from .knob_ablation import KNOBS, run_knob_ablation
from .pretrain import add_benchmark_arguments, pretrain_backbone
from .run_methods import run_methods

__all__ = [
    'KNOBS', 'run_knob_ablation', 'add_benchmark_arguments',
    'pretrain_backbone', 'run_methods'
]
