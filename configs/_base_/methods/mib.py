# MiB (Cermelli et al., CVPR 2020): at steps k >= 1 the unbiased
# cross-entropy (Eq. 4) replaces the classification loss, the unbiased
# knowledge distillation (Eq. 5-6) keeps M_{k-1}'s outputs, lambda = 10,
# and the new classifier rows start from the background's (weight copied,
# bias b_0 - log(|U_k| + 1), also for the background).
# Source: fcdl94/MiB argparser.py, --method MiB: loss_kd = 10, unce = True,
# unkd = True, init_balanced = True; --alpha defaults to 1.0; run.py:
# init_new_classifier when init_balanced. MiB evaluates with unseen
# classes ignored (dataset/voc.py: masking value 255 for the test set):
# the leaves set eval_protocol = 'mask_unseen' in both settings.
# `unbiased_ce` replaces the classification loss of steps k >= 1 (step 0
# keeps the head's cross-entropy, as MiB's train.py does when
# old_classes == 0). The terms: mmseg_incremental/models/terms/mib.py.
# MiB trains void pixels (255) as background, at every step (step 0
# included): dataset/voc.py l.142-156 (masking_value = 0 for the training
# set, inverted_order[255] = masking_value); evaluation keeps 255 ignored.
# void_as_background inserts VoidAsBackground after LoadAnnotations in the
# training pipeline (mmseg_incremental/datasets/transforms/
# void_as_background.py). PLOP keeps void ignored (its dataset/voc.py
# l.182-184), and so do the ILT rows (mib-ilt.py).
_base_ = ['./ft.py']
method = 'MiB'
void_as_background = True
incremental = dict(
    distill_terms=dict(
        unbiased_ce=dict(type='UnbiasedCETerm'),
        unbiased_kd=dict(type='UnbiasedKDTerm', loss_weight=10.0,
                         alpha=1.0)),
    new_class_init='background')
