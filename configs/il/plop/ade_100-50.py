# ADE20K 100-50, PLOP (Douillard et al., CVPR 2021); PLOP's Table 2: mIoU
# 0-100 / 101-150 / all = 41.87 / 14.89 / 32.94 (unverified: not found in
# a stored copy of the paper). PLOP's scripts/ade/plop_ade_100-50.sh:
# --overlap, --pod_factor 0.001 and the logits' factor 0.00001 (pod_options
# of steps k >= 1), pseudo-labelling as on VOC. The iterations a class are
# MiB's lists' (disjoint, the only ones shipped); PLOP's --overlap lists
# hold more images (not counted here), so PLOP's epochs are longer.
_base_ = [
    '../../_base_/mib_ade_deeplabv3.py', '../../_base_/settings/overlapped.py',
    '../../_base_/methods/plop.py'
]
task = '100-50'
eval_protocol = 'unseen_as_background'
incremental = dict(
    distill_terms=dict(
        pod=dict(loss_weight=0.001, last_layer_weight=0.00001)))
# Step 1: 6,744 images (MiB's data/ade/100-50/train-1.npy): 281 it/epoch x
# 60 = 16,860 / 50 classes = 337.2 (step 0: see the setup).
iters_per_class_incremental = 337
