# ADE20K 100-10, PLOP (Douillard et al., CVPR 2021); PLOP's Table 2: mIoU
# 0-100 / 101-150 / all = 40.48 / 13.61 / 31.59 (unverified: not found in
# a stored copy of the paper). PLOP's scripts/ade/plop_ade_100-10.sh:
# --overlap, --pod_factor 0.001 and the logits' factor 0.00001 (pod_options
# of steps k >= 1), pseudo-labelling as on VOC. Schedule: the setup's,
# from MiB's lists (disjoint, the only ones shipped); PLOP's --overlap
# lists hold more images (not counted here), so PLOP's epochs are longer.
_base_ = [
    '../../_base_/mib_ade_deeplabv3.py', '../../_base_/settings/overlapped.py',
    '../../_base_/methods/plop.py'
]
task = '100-10'
eval_protocol = 'unseen_as_background'
incremental = dict(
    distill_terms=dict(
        pod=dict(loss_weight=0.001, last_layer_weight=0.00001)))
