# ADE20K 100-10, overlapped, DKD (Baek et al., NeurIPS 2022).
# Published: hIoU / mIoU_all = 26.79 / 34.53 (cvlab-yonsei/DKD README.md,
# section "Testing", ADE20K table, row "DKD", column "ADE 100-10": the
# results the README gives for its released weights; the paper's own table
# was not checked here). hIoU is the harmonic mean of the mIoU over 0-100
# (background included) and the mIoU over 101-150, mIoU_all the mIoU over
# 0-150 (utils/metric.py): this project's hIoU and mIoU after the last step.
# DKD's network, crop, batch, epochs and evaluation (unseen classes ignored,
# 512 centre crop), but not its warm-up: DKD's lr warms up over the first
# fifth of every step, which this project cannot express for steps of
# different lengths (configs/_base_/dkd_ade_deeplabv3.py lists this and the
# other differences), so the number is an approximate reference, not a
# like-for-like target.
_base_ = [
    '../../_base_/dkd_ade_deeplabv3.py', '../../_base_/settings/overlapped.py',
    '../../_base_/methods/dkd-ade.py'
]
task = '100-10'
# config_ade.json: the test set's unseen classes -> 255 (ignored).
eval_protocol = 'mask_unseen'
# 100 epochs (4 GPUs x 6, drop_last: floor(ceil(N / 4) / 6) iterations an
# epoch) of DKD's lists data/ade/overlap_100-10_train_<k>.npy. Images per
# step: 20,192, 1,710, 2,294, 2,747, 4,279, 2,844 -> 841, 71, 95, 114, 178,
# 118 iterations an epoch, x 100.
iters_per_step = [84100, 7100, 9500, 11400, 17800, 11800]
