# L'_D (Eq. 3): output distillation, lambda'_D = 1, on pixels labelled
# background or old (the authors' code).
_base_ = ['./ft.py']
method = "L'_D"
incremental = dict(
    distill_terms=dict(
        output=dict(
            type='OutputDistillTerm',
            variant='ilt',
            pixel_mask='old',
            loss_weight=1.0)))
