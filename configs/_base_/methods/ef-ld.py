# EF + L'_D: frozen encoder and output distillation (best on VOC 15-1).
incremental = dict(
    distill_output=dict(
        type='OutputDistillLoss',
        variant='ilt',
        pixel_mask='old',
        loss_weight=1.0),
    distill_feature=None,
    freeze_encoder=True,
    new_class_init='default')
