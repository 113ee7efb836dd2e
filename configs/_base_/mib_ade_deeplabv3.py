# MiB's and PLOP's setup on ADE20K (150 classes + background 0): as on VOC
# (configs/_base_/mib_voc_deeplabv3.py: DeepLab-v3 R101 OS 16, trained BN,
# crop 512, total batch 24, SGD momentum 0.9 Nesterov, weight decay 1e-4,
# poly to 0, lr 0.01 at step 0 and 0.001 after) but 60 epochs a step.
# Sources: fcdl94/MiB README.md ("--epochs 30 (Pascal-VOC 2012) | 60
# (ADE20K)", lr and batch as on VOC, the ADE example commands with
# --batch_size 12 on 2 GPUs); PLOP's scripts/ade/plop_ade_100-{50,10}.sh
# (--batch_size 12 on 2 GPUs, --lr 0.01 --epochs 60 at step 0, --lr 0.001
# --epochs 60 after).
#
# Epochs -> iterations (2 GPUs x 12, drop_last: floor(ceil(N / 2) / 12)
# iterations an epoch), with MiB's image lists data/ade/<task>/train-<k>.npy
# (built without --overlap, MiB's default: the disjoint rule):
#   step 0 (100-50 and 100-10): 13,452 images -> 560 x 60 = 33,600
#       iterations / 101 classes = 332.7 -> iters_per_class = 333 (33,633)
#   100-10, steps 1-5: 1,130, 1,200, 1,366, 1,550, 1,498 images -> 47, 50,
#       56, 64, 62 x 60 = 2,820, 3,000, 3,360, 3,840, 3,720: 16,740 in all
#       / 50 classes = 334.8 -> iters_per_class_incremental = 335 (3,350 a
#       step, 16,750 in all)
#   100-50, step 1: 6,744 images -> 281 x 60 = 16,860 / 50 classes = 337.2
#       -> 337 (set in the 100-50 leaves)
# Augmentation: mmseg's ADE pipeline (random resize 0.5-2.0 of a 2048x512
# box, 512 crop, flip) stands in for MiB's RandomResizedCrop(512,
# scale=(0.5, 2.0)); evaluation: MiB/PLOP's 512 centre crop (eval_crop).
_base_ = [
    './models/deeplabv3_r101-d16.py', './datasets/ade20k_incremental.py',
    './schedules/ilt_schedule.py', './default_runtime.py'
]
crop_size = (512, 512)
# A checkpoint every 10 % of a step: a hard kill (no SIGTERM first) loses
# at most a tenth of it (SIGTERM/SIGINT/SIGUSR1 save the current iteration).
checkpoints_per_step = 10
# Evaluation as MiB and PLOP: short side resized to 512, centre 512 x 512
# crop (their --crop_val, default True: argparser.py of fcdl94/MiB and of
# arthurdouillard/CVPR2021_PLOP; run.py get_dataset). ILT's rows evaluate
# whole images.
eval_crop = 512
total_batch_size = 24
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)

iters_per_class = 333
iters_per_class_incremental = 335
lr_step0 = 0.01
lr_incremental = 0.001
lr_min = 0.0
optimizer = dict(
    type='SGD', lr=lr_step0, momentum=0.9, weight_decay=1e-4, nesterov=True)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
