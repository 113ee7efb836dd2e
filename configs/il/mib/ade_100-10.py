# ADE20K 100-10, MiB (Cermelli et al., CVPR 2020). MiB's Table 2 reports
# mIoU 1-100 = 31.8, all = 25.9, and per step 10.4, 14.8, 12.8, 13.6, 18.7
# (101-150 = 14.1, their mean). Disjoint: MiB's ADE lists (data/ade/100-10/,
# no "-ov") come from run.py without --overlap. Unseen classes are ignored
# in its evaluation. Schedule: the setup's (333 / 335 iterations a class).
_base_ = [
    '../../_base_/mib_ade_deeplabv3.py', '../../_base_/settings/disjoint.py',
    '../../_base_/methods/mib.py'
]
task = '100-10'
eval_protocol = 'mask_unseen'
# 60 epochs of MiB's lists (data/ade/100-10/train-<k>.npy; 2 GPUs x 12,
# drop_last: floor(ceil(N / 2) / 12) iterations an epoch): step 0 13,452
# images -> 560 x 60; steps 1-5 1,130, 1,200, 1,366, 1,550, 1,498 ->
# 47, 50, 56, 64, 62 x 60.
iters_per_step = [33600, 2820, 3000, 3360, 3840, 3720]
