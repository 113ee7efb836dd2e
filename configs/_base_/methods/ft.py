# FT: plain fine-tuning of M_{k-1} on the new step's data (the lower bound).
incremental = dict(
    distill_output=None,
    distill_feature=None,
    freeze_encoder=False,
    new_class_init='default')
