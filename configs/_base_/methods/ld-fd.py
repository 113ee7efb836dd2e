# L'_D + L''_D: output and feature distillation together.
_base_ = ['./ld.py']
method = "L'_D+L''_D"
incremental = dict(
    distill_terms=dict(
        feature=dict(type='FeatureDistillTerm', loss_weight=50.0)))
