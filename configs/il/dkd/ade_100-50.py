# ADE20K 100-50, overlapped, DKD (Baek et al., NeurIPS 2022).
# Published: hIoU / mIoU_all = 29.42 / 35.55 (cvlab-yonsei/DKD README.md,
# section "Testing", ADE20K table, row "DKD", column "ADE 100-50": the
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
task = '100-50'
# config_ade.json: the test set's unseen classes -> 255 (ignored).
eval_protocol = 'mask_unseen'
# 100 epochs (4 GPUs x 6, drop_last: floor(ceil(N / 4) / 6) iterations an
# epoch) of DKD's lists data/ade/overlap_100-50_train_<k>.npy. Images per
# step: 20,210, 9,390 -> 842, 391 iterations an epoch, x 100. DKD's 100-50
# step-0 list holds all 20,210 training images, its 100-10 one the 20,192
# that show a class of 1-100 (this project's overlapped step 0 of both); the
# schedule follows each list.
iters_per_step = [84200, 39100]
