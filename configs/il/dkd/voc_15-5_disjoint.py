# VOC 15-5, disjoint, DKD (Baek et al., NeurIPS 2022).
# Published: hIoU / mIoU_all = 64.35 / 72.21 (cvlab-yonsei/DKD README.md,
# section "Testing", PASCAL VOC 2012 table "Method (Disjoint)", row "DKD",
# column "VOC 15-5": the results the README gives for its released weights;
# the paper's own table was not checked here). hIoU is the harmonic mean of
# the mIoU over 0-15 (background included) and the mIoU over 16-20, mIoU_all
# the mIoU over 0-20 (utils/metric.py): this project's hIoU and mIoU after
# the last step. Like for like: DKD's network, crop, batch, schedule and
# evaluation (unseen classes as background, 512 centre crop); what differs is
# listed in configs/_base_/dkd_voc_deeplabv3.py (mmseg's ASPPHead, plain BN,
# fp32). The README links this cell to voc_disjoint_15-1.zip (the link only;
# the numbers are 15-5's).
_base_ = [
    '../../_base_/dkd_voc_deeplabv3.py', '../../_base_/settings/disjoint.py',
    '../../_base_/methods/dkd.py'
]
task = '15-5'
eval_protocol = 'unseen_as_background'  # DKD's test set: unseen -> 0
# 60 epochs (4 GPUs x 8, drop_last: floor(ceil(N / 4) / 8) iterations an
# epoch) of DKD's lists data/voc/disjoint_15-5_train_<k>.npy (the sizes of
# MiB's lists: MIB_IMAGES in tests/test_configs/test_mib_plop_configs.py).
# Images per step: 8,437, 2,145 -> 263, 67 iterations an epoch, x 60.
iters_per_step = [15780, 4020]
