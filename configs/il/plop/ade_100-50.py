# ADE20K 100-50, PLOP (Douillard et al., CVPR 2021). PLOP's published ADE
# numbers are not printed here: no text of the paper confirmed them
# (docs/results.md). PLOP's scripts/ade/plop_ade_100-50.sh:
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
# 60 epochs of MiB's lists (data/ade/100-50/train-<k>.npy; 2 GPUs x 12,
# drop_last: floor(ceil(N / 2) / 12) iterations an epoch): step 0 13,452
# images -> 560 x 60; step 1 6,744 -> 281 x 60.
iters_per_step = [33600, 16860]
