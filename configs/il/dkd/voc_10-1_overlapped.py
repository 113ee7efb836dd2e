# VOC 10-1, overlapped, DKD (Baek et al., NeurIPS 2022).
# Published: hIoU / mIoU_all = 57.21 / 60.43 (cvlab-yonsei/DKD README.md,
# section "Testing", PASCAL VOC 2012 table "Method (Overlapped)", row "DKD",
# column "VOC 10-1": the results the README gives for its released weights;
# the paper's own table was not checked here). hIoU is the harmonic mean of
# the mIoU over 0-10 (background included) and the mIoU over 11-20, mIoU_all
# the mIoU over 0-20 (utils/metric.py): this project's hIoU and mIoU after
# the last step. Like for like: DKD's network, crop, batch, schedule and
# evaluation (unseen classes as background, 512 centre crop); what differs is
# listed in configs/_base_/dkd_voc_deeplabv3.py (mmseg's ASPPHead, plain BN,
# fp32). scripts/voc/overlapped/train_voc_10-1.sh sets MEMORY_SIZE=100
# (DKD-M's exemplar memory, not reproduced); the README's DKD row and its
# example script use MEMORY_SIZE=0, as here.
_base_ = [
    '../../_base_/dkd_voc_deeplabv3.py', '../../_base_/settings/overlapped.py',
    '../../_base_/methods/dkd.py'
]
task = '10-1'
eval_protocol = 'unseen_as_background'  # DKD's test set: unseen -> 0
# 60 epochs (4 GPUs x 8, drop_last: floor(ceil(N / 4) / 8) iterations an
# epoch) of DKD's lists data/voc/overlap_10-1_train_<k>.npy. Images per step:
# 6,139, 528, 1,177, 444, 482, 3,898, 487, 299, 491, 500, 548 -> 191, 16, 36,
# 13, 15, 121, 15, 9, 15, 15, 17 iterations an epoch, x 60.
iters_per_step = [11460, 960, 2160, 780, 900, 7260, 900, 540, 900, 900, 1020]
