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
# Step 1: 6,744 images (MiB's data/ade/100-50/train-1.npy): 281 it/epoch x
# 60 = 16,860 / 50 classes = 337.2 (step 0: see the setup).
iters_per_class_incremental = 337
