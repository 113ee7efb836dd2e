# VOC 15-1, disjoint, PLOP (Douillard et al., CVPR 2021). PLOP reports no
# disjoint VOC numbers (its Table 1 is overlapped only).
_base_ = [
    '../../_base_/mib_voc_deeplabv3.py',
    '../../_base_/settings/disjoint.py', '../../_base_/methods/plop.py'
]
task = '15-1'
eval_protocol = 'unseen_as_background'  # PLOP's test set: unseen -> 0
# 30 epochs of MiB's list data/voc/15-5s/train-<k>.npy, which PLOP's code also
# builds (the same filter_images in dataset/utils.py): step 0: 8,437 images:
# 351 it/epoch x 30 = 10,530 / 16 classes -> 658; steps 1-5: 378, 299, 420,
# 500, 548 images: 450 + 360 + 510 + 600 + 660 = 2,580 iterations / 5 classes
# = 516 a step.
# Each step runs exactly its 30 epochs (the totals above), not the average
# per class of an iters_per_class schedule.
iters_per_step = [10530, 450, 360, 510, 600, 660]
