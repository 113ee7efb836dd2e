# VOC 15-1, overlapped, PLOP (Douillard et al., CVPR 2021). PLOP's Table 1
# reports mIoU 0-15 / 16-20 / all = 65.12 / 21.11 / 54.64.
_base_ = [
    '../../_base_/mib_voc_deeplabv3.py',
    '../../_base_/settings/overlapped.py', '../../_base_/methods/plop.py'
]
task = '15-1'
eval_protocol = 'unseen_as_background'  # PLOP's test set: unseen -> 0
# 30 epochs of MiB's list data/voc/15-5s-ov/train-<k>.npy, which PLOP's code
# also
# builds (the same filter_images in dataset/utils.py): step 0: 9,568 images:
# 398 it/epoch x 30 = 11,940 / 16 classes -> 746; steps 1-5: 487, 299, 491,
# 500, 548 images: 600 + 360 + 600 + 600 + 660 = 2,820 iterations / 5 classes
# = 564 a step.
# Each step runs exactly its 30 epochs (the totals above), not the average
# per class of an iters_per_class schedule.
iters_per_step = [11940, 600, 360, 600, 600, 660]
