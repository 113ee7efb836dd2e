# VOC 19-1, overlapped, PLOP (Douillard et al., CVPR 2021). PLOP's Table 1
# reports mIoU 0-19 / 20 / all = 75.35 / 37.35 / 73.54.
_base_ = [
    '../../_base_/mib_voc_deeplabv3.py',
    '../../_base_/settings/overlapped.py', '../../_base_/methods/plop.py'
]
task = '19-1'
eval_protocol = 'unseen_as_background'  # PLOP's test set: unseen -> 0
# 30 epochs of MiB's list data/voc/19-1-ov/train-<k>.npy, which PLOP's code
# also
# builds (the same filter_images in dataset/utils.py): step 0: 10,410 images:
# 433 it/epoch x 30 = 12,990 / 20 classes = 649.5 -> 650; step 1: 548 images:
# 22 x 30 = 660 / 1 class.
# Each step runs exactly its 30 epochs (the totals above), not the average
# per class of an iters_per_class schedule.
iters_per_step = [12990, 660]
