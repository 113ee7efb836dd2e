# EF: the encoder stays as M_{k-1} left it; only the decoder learns.
incremental = dict(
    distill_output=None,
    distill_feature=None,
    freeze_encoder=True,
    new_class_init='default')
