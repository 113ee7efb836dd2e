# MiB/PLOP's re-implementation of ILT: L'_D renormalised over the old
# classes and averaged over classes (variant='mib'), no pixel mask,
# lambda'_D = lambda''_D = 100.
_base_ = ['./ft.py']
method = 'ILT (MiB)'
incremental = dict(
    distill_output=dict(
        type='OutputDistillLoss',
        variant='mib',
        pixel_mask='none',
        loss_weight=100.0),
    distill_feature=dict(type='FeatureDistillLoss', loss_weight=100.0))
