# EF: the encoder stays as M_{k-1} left it; only the decoder learns.
_base_ = ['./ft.py']
method = 'EF'
incremental = dict(freeze_encoder=True)
