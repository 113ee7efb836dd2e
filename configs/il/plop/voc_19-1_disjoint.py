# VOC 19-1, disjoint, PLOP (Douillard et al., CVPR 2021). PLOP reports no
# disjoint VOC numbers (its Table 1 is overlapped only).
_base_ = [
    '../../_base_/mib_voc_deeplabv3.py',
    '../../_base_/settings/disjoint.py', '../../_base_/methods/plop.py'
]
task = '19-1'
eval_protocol = 'unseen_as_background'  # PLOP's test set: unseen -> 0
# 30 epochs of MiB's list data/voc/19-1/train-<k>.npy, which PLOP's code also
# builds (the same filter_images in dataset/utils.py): step 0: 10,034 images:
# 418 it/epoch x 30 = 12,540 / 20 classes = 627; step 1: 548 images: 22 x 30 =
# 660 / 1 class.
# Each step runs exactly its 30 epochs (the totals above), not the average
# per class of an iters_per_class schedule.
iters_per_step = [12540, 660]
