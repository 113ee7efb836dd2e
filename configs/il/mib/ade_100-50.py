# ADE20K 100-50, MiB (Cermelli et al., CVPR 2020). MiB's Table 2 reports
# mIoU 1-100 / 101-150 / all = 37.9 / 27.9 / 34.6. Disjoint: MiB's ADE
# lists (data/ade/100-50/, no "-ov") come from run.py without --overlap,
# i.e. dataset/utils.py filter_images' disjoint rule. Unseen classes are
# ignored in its evaluation.
_base_ = [
    '../../_base_/mib_ade_deeplabv3.py', '../../_base_/settings/disjoint.py',
    '../../_base_/methods/mib.py'
]
task = '100-50'
eval_protocol = 'mask_unseen'
# 60 epochs of MiB's lists (data/ade/100-50/train-<k>.npy; 2 GPUs x 12,
# drop_last: floor(ceil(N / 2) / 12) iterations an epoch): step 0 13,452
# images -> 560 x 60; step 1 6,744 -> 281 x 60.
iters_per_step = [33600, 16860]
