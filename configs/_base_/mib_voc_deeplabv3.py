# MiB's and PLOP's setup on Pascal VOC 2012 (aug): DeepLab-v3 R101 at
# output stride 16 with trained BN, crop 512, a total batch of 24, SGD
# (momentum 0.9, Nesterov, weight decay 1e-4), poly lr (power 0.9) to 0,
# lr 0.01 at step 0 and 0.001 at steps k >= 1, 30 epochs a step.
# Sources: fcdl94/MiB README.md ("--lr 0.01 (for step 0) | 0.001 (for
# step > 0)", "--batch_size <24/num_GPUs>", "--epochs 30 (Pascal-VOC
# 2012) | 60 (ADE20K)"), argparser.py (crop_size 512, weight_decay 1e-4,
# lr_policy poly, lr_power 0.9), run.py (SGD momentum 0.9, nesterov=True,
# one lr for backbone, head and classifier; PolyLR over epochs x
# len(train_loader) iterations), utils/scheduler.py (base_lr * (1 -
# it / max_iters) ** 0.9, i.e. down to 0); PLOP's scripts/voc/plop_*.sh
# (2 GPUs x --batch_size 12, --lr 0.01 then 0.001, 30 epochs at every
# step) and README.md (the same list as MiB's).
#
# Epochs -> iterations. MiB/PLOP run 2 GPUs x 12 images with a
# DistributedSampler and drop_last=True, so an epoch of N images is
# floor(ceil(N / 2) / 12) iterations. This project's schedule is per class
# (step 0: |S_0| x iters_per_class, background included; step k: |U_k| x
# iters_per_class_incremental). With MiB's image lists
# (data/voc/15-5s-ov/train-<k>.npy, the overlapped 15-1 of MiB's repo):
#   step 0: 9,568 images -> 398 it/epoch x 30 = 11,940 iterations;
#           11,940 / 16 classes = 746.25 -> iters_per_class = 746 (11,936)
#   steps 1-5: 487, 299, 491, 500, 548 images -> 20, 12, 20, 20, 22
#           it/epoch x 30 = 600, 360, 600, 600, 660 iterations, 2,820 in
#           all -> iters_per_class_incremental = 2,820 / 5 = 564 (one
#           value for every step: the total is MiB's, each step's length
#           is 564 instead of 360-660). The VOC leaves list each step's
#           own length instead (iters_per_step = [11940, 600, 360, ...]),
#           so every step runs exactly its 30 epochs; these per-class
#           values remain for a leaf of its own task.
# These are 15-1 overlapped's; each leaf sets its own task and setting's
# (configs/il/mib/, configs/il/plop/), from the same lists.
#
# Augmentation: MiB's RandomResizedCrop(512, scale=(0.5, 2.0)) (Inception
# crop, dataset/transform.py: a crop of 0.5-2x the image's area, aspect
# 3/4-4/3, retried until it fits, resized to 512x512) zooms a 500x375 VOC
# image by about 1.18 / sqrt(area fraction) for the fractions that fit
# (0.5 to ~1): ~1.2-1.7 of its own size. Approximated here by this
# project's image-relative RandomRescale(1.2, 1.7) + 512 crop + flip (no
# aspect jitter). Evaluation: MiB/PLOP's 512 centre crop (eval_crop below).
_base_ = [
    './models/deeplabv3_r101-d16.py', './datasets/voc12aug_incremental.py',
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
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', ratio_range=(1.2, 1.7)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

iters_per_class = 746
iters_per_class_incremental = 564
lr_step0 = 0.01
lr_incremental = 0.001
lr_min = 0.0
optimizer = dict(
    type='SGD', lr=lr_step0, momentum=0.9, weight_decay=1e-4, nesterov=True)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
