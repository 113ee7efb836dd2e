# MiB/PLOP's re-implementation of ILT: L'_D renormalised over the old
# classes and averaged over classes (variant='mib'), no pixel mask,
# lambda'_D = lambda''_D = 100.
_base_ = ['./ft.py']
method = 'ILT (MiB)'
incremental = dict(
    distill_terms=dict(
        output=dict(
            type='OutputDistillTerm',
            variant='mib',
            pixel_mask='none',
            loss_weight=100.0),
        feature=dict(type='FeatureDistillTerm', loss_weight=100.0)))
