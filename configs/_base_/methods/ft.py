# FT: plain fine-tuning of M_{k-1} on the new step's data (the lower bound).
# Every method fragment names itself (`method`, read by the reports) and
# sets the DistillEncoderDecoder arguments of steps k >= 1 (`incremental`);
# the others inherit this one and add their terms (no L'_D / L''_D here).
method = 'FT'
incremental = dict(freeze_encoder=False, new_class_init='default')
