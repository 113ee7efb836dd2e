# L''_D (Eq. 4): L2 between M_{k-1}'s and M_k's encoder features,
# lambda''_D = 50 (authors' code).
_base_ = ['./ft.py']
method = "L''_D"
incremental = dict(
    distill_terms=dict(
        feature=dict(type='FeatureDistillTerm', loss_weight=50.0)))
