# VOC 19-1, disjoint, MiB (Cermelli et al., CVPR 2020). MiB's Table 1
# reports mIoU 1-19 / 20 / all = 69.6 / 25.6 / 67.4.
_base_ = [
    '../../_base_/mib_voc_deeplabv3.py',
    '../../_base_/settings/disjoint.py', '../../_base_/methods/mib.py'
]
task = '19-1'
eval_protocol = 'mask_unseen'  # MiB's test set: unseen classes ignored
# 30 epochs of MiB's list data/voc/19-1/train-<k>.npy: step 0: 10,034 images:
# 418 it/epoch x 30 = 12,540 / 20 classes = 627; step 1: 548 images: 22 x 30 =
# 660 / 1 class.
# Each step runs exactly its 30 epochs (the totals above), not the average
# per class of an iters_per_class schedule.
iters_per_step = [12540, 660]
