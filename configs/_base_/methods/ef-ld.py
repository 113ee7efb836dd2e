# EF + L'_D: frozen encoder and output distillation (best on VOC 15-1).
_base_ = ['./ld.py']
method = "EF+L'_D"
incremental = dict(freeze_encoder=True)
