# VOC 15-5, disjoint, MiB (Cermelli et al., CVPR 2020). MiB's Table 1
# reports mIoU 1-15 / 16-20 / all = 71.8 / 43.3 / 64.7.
_base_ = [
    '../../_base_/mib_voc_deeplabv3.py',
    '../../_base_/settings/disjoint.py', '../../_base_/methods/mib.py'
]
task = '15-5'
eval_protocol = 'mask_unseen'  # MiB's test set: unseen classes ignored
# 30 epochs of MiB's list data/voc/15-5/train-<k>.npy: step 0: 8,437 images:
# 351 it/epoch x 30 = 10,530 / 16 classes = 658.1 -> 658; step 1: 2,145
# images: 89 x 30 = 2,670 / 5 classes = 534.
# Each step runs exactly its 30 epochs (the totals above), not the average
# per class of an iters_per_class schedule.
iters_per_step = [10530, 2670]
