# FT: plain fine-tuning of M_{k-1} on the new step's data (the lower bound).
# Every method fragment names itself (`method`, read by the reports) and
# sets the IncrementalEncoderDecoder arguments of steps k >= 1
# (`incremental`); the others inherit this one and add their distillation
# terms to `distill_terms` (name -> registered term; fragments merge by
# name, and a leaf drops an inherited term with `name=None`). FT has none.
method = 'FT'
incremental = dict(freeze_encoder=False, new_class_init='default')
