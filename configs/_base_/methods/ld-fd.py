# L'_D + L''_D: output and feature distillation together.
incremental = dict(
    distill_output=dict(
        type='OutputDistillLoss',
        variant='ilt',
        pixel_mask='old',
        loss_weight=1.0),
    distill_feature=dict(type='FeatureDistillLoss', loss_weight=50.0),
    freeze_encoder=False,
    new_class_init='default')
