# VOC 15-5, disjoint, PLOP (Douillard et al., CVPR 2021). PLOP reports no
# disjoint VOC numbers (its Table 1 is overlapped only).
_base_ = [
    '../../_base_/mib_voc_deeplabv3.py',
    '../../_base_/settings/disjoint.py', '../../_base_/methods/plop.py'
]
task = '15-5'
eval_protocol = 'unseen_as_background'  # PLOP's test set: unseen -> 0
# 30 epochs of MiB's list data/voc/15-5/train-<k>.npy, which PLOP's code also
# builds (the same filter_images in dataset/utils.py): step 0: 8,437 images:
# 351 it/epoch x 30 = 10,530 / 16 classes = 658.1 -> 658; step 1: 2,145
# images: 89 x 30 = 2,670 / 5 classes = 534.
# Each step runs exactly its 30 epochs (the totals above), not the average
# per class of an iters_per_class schedule.
iters_per_step = [10530, 2670]
