# L'_D + L''_D: output and feature distillation together.
_base_ = ['./ld.py']
method = "L'_D+L''_D"
incremental = dict(
    distill_feature=dict(type='FeatureDistillLoss', loss_weight=50.0))
