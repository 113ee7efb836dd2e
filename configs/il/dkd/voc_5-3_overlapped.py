# VOC 5-3, overlapped, DKD (Baek et al., NeurIPS 2022).
# Published: hIoU / mIoU_all = 61.32 / 58.98 (cvlab-yonsei/DKD README.md,
# section "Testing", PASCAL VOC 2012 table "Method (Overlapped)", row "DKD",
# column "VOC 5-3": the results the README gives for its released weights;
# the paper's own table was not checked here). hIoU is the harmonic mean of
# the mIoU over 0-5 (background included) and the mIoU over 6-20, mIoU_all
# the mIoU over 0-20 (utils/metric.py): this project's hIoU and mIoU after
# the last step. Like for like: DKD's network, crop, batch, schedule and
# evaluation (unseen classes as background, 512 centre crop); what differs is
# listed in configs/_base_/dkd_voc_deeplabv3.py (mmseg's ASPPHead, plain BN,
# fp32).
_base_ = [
    '../../_base_/dkd_voc_deeplabv3.py', '../../_base_/settings/overlapped.py',
    '../../_base_/methods/dkd.py'
]
task = '5-3'
eval_protocol = 'unseen_as_background'  # DKD's test set: unseen -> 0
# 60 epochs (4 GPUs x 8, drop_last: floor(ceil(N / 4) / 8) iterations an
# epoch) of DKD's lists data/voc/overlap_5-3_train_<k>.npy. Images per step:
# 2,836, 2,331, 1,542, 2,095, 4,484, 1,468 -> 88, 72, 48, 65, 140, 45
# iterations an epoch, x 60.
iters_per_step = [5280, 4320, 2880, 3900, 8400, 2700]
