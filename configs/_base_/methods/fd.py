# L''_D (Eq. 4): L2 between M_{k-1}'s and M_k's encoder features,
# lambda''_D = 50 (authors' code).
incremental = dict(
    distill_output=None,
    distill_feature=dict(type='FeatureDistillLoss', loss_weight=50.0),
    freeze_encoder=False,
    new_class_init='default')
