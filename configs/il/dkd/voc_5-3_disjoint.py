# VOC 5-3, disjoint, DKD (Baek et al., NeurIPS 2022).
# DKD published no disjoint 5-3 row (its README's disjoint table has 19-1,
# 15-5 and 15-1 only, and the repository has no disjoint 5-3 image list), so
# no number is printed here: DKD's VOC setup and schedule on the disjoint
# split.
_base_ = [
    '../../_base_/dkd_voc_deeplabv3.py', '../../_base_/settings/disjoint.py',
    '../../_base_/methods/dkd.py'
]
task = '5-3'
eval_protocol = 'unseen_as_background'  # DKD's test set: unseen -> 0
# 60 epochs (4 GPUs x 8, drop_last: floor(ceil(N / 4) / 8) iterations an
# epoch) of DKD's disjoint rule applied to its overlapped lists. DKD ships no
# disjoint 5-3 list, but a disjoint step k keeps exactly the images of
# data/voc/overlap_5-3_train_<k>.npy that are in no later step's list (the
# rule of data_loader/dataset.py; done on DKD's 15-1, 15-5 and 19-1
# overlapped lists this gives its disjoint lists image for image), so these
# counts are exact, not estimated. Steps 3-5 also follow from the disjoint
# 10-1 and 15-1 lists (868 + 227 + 201; 3,247 + 378 + 299; 420 + 500 + 548).
# Images per step: 1,753, 1,517, 624, 1,296, 3,924, 1,468 -> 54, 47, 19, 40,
# 122, 45 iterations an epoch, x 60.
iters_per_step = [3240, 2820, 1140, 2400, 7320, 2700]
