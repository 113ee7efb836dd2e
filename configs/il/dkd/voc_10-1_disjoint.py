# VOC 10-1, disjoint, DKD (Baek et al., NeurIPS 2022).
# DKD published no disjoint 10-1 row (its README's disjoint table has 19-1,
# 15-5 and 15-1 only, and the repository has no disjoint 10-1 image list), so
# no number is printed here: DKD's VOC setup and schedule on the disjoint
# split.
_base_ = [
    '../../_base_/dkd_voc_deeplabv3.py', '../../_base_/settings/disjoint.py',
    '../../_base_/methods/dkd.py'
]
task = '10-1'
eval_protocol = 'unseen_as_background'  # DKD's test set: unseen -> 0
# 60 epochs (4 GPUs x 8, drop_last: floor(ceil(N / 4) / 8) iterations an
# epoch) of DKD's disjoint rule applied to its overlapped lists. DKD ships no
# disjoint 10-1 list, but a disjoint step k keeps exactly the images of
# data/voc/overlap_10-1_train_<k>.npy that are in no later step's list (the
# rule of data_loader/dataset.py; done on DKD's 15-1, 15-5 and 19-1
# overlapped lists this gives its disjoint lists image for image), so these
# counts are exact, not estimated. They equal the sizes of RCIL's shipped
# 10-1 disjoint lists (zhangchbin/RCIL data/voc/10-1/train-<k>.npy), and
# steps 6-10 equal DKD's disjoint 15-1 steps 1-5. Images per step: 3,706,
# 188, 868, 227, 201, 3,247, 378, 299, 420, 500, 548 -> 115, 5, 27, 7, 6,
# 101, 11, 9, 13, 15, 17 iterations an epoch, x 60.
iters_per_step = [6900, 300, 1620, 420, 360, 6060, 660, 540, 780, 900, 1020]
