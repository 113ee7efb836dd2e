# DKD's setup on ADE20K (150 classes + background 0), for the leaves
# configs/il/dkd/ade_*: MiB's network and data (configs/_base_/
# mib_ade_deeplabv3.py: DeepLab-v3 R101 at output stride 16, crop 512,
# the 512 centre crop for evaluation) with DKD's head, optimizer and
# schedule.
#
# Facts from cvlab-yonsei/DKD (commit fb4693f):
# * scripts/ade/overlapped/train_ade_{100-50,100-10,50-50}.sh and README.md
#   ("Training", ADE20K): 4 GPUs x --bs 6 ("BS=6  # Total 24"),
#   INIT_LR=0.0025 at step 0 and LR=0.00025 at steps k >= 1, --freeze_bn at
#   every step k >= 1, no --pos_weight.
# * configs/config_ade.json: SGD lr 0.0025, weight_decay 1e-4, momentum
#   0.9, nesterov; trainer.epochs 100; hyperparameter pos_weight 35 (every
#   step: the ADE scripts never override it), mbce 1, kd 5, dkd_pos 5,
#   dkd_neg 5, ac 1; use_amp true; lr_scheduler WarmupPolyLR with
#   warmup_iters 0.2; test masking_value 255 (unseen classes ignored:
#   eval_protocol 'mask_unseen'; at the last step no class is unseen);
#   val/test transform_args crop_size 512.
# * train_ade.py: the optimizer groups of train_voc.py (backbone at lr,
#   ASPP and classifiers at 10 x lr), BN momentum 0.01 in the backbone.
# * data_loader/data_loaders.py: batch 6 per process, DistributedSampler,
#   drop_last: an epoch of N images is floor(ceil(N / 4) / 6) iterations;
#   the leaves list each step's 100 epochs of DKD's lists
#   (data/ade/overlap_<task>_train_<k>.npy) in iters_per_step.
# * data_loader/dataset.py (ADE) transform_val, the test set's too:
#   Resize(512), CenterCrop(512) -> eval_crop = 512 (inherited).
#
# Not reproduced: DKD's warm-up. utils/lr_scheduler.py WarmupPolyLR
# multiplies the poly factor by a linear warm-up from 0.001 to 1 over the
# first 20 % of each step's iterations; this project keeps a warm-up
# scheduler as written in every step (configs/_base_/schedules/
# ilt_schedule.py), so no single LinearLR is 20 % of steps of different
# lengths: the poly decay alone runs here. Neither are DKD's mixed
# precision (use_amp), SyncBatchNorm, ASPP layout and initialisation (see
# configs/_base_/dkd_voc_deeplabv3.py).
_base_ = ['./mib_ade_deeplabv3.py']
total_batch_size = 24
# Only a leaf of 100-10's step lengths would use these (every leaf lists
# iters_per_step): 100 epochs of data/ade/overlap_100-10_train_<k>.npy:
# step 0 20,192 images -> 841 it/epoch x 100 = 84,100 / 101 classes =
# 832.7; steps 1-5: 1,710, 2,294, 2,747, 4,279, 2,844 -> 71, 95, 114, 178,
# 118 x 100 = 57,600 in all / 50 classes = 1,152.
iters_per_class = 833
iters_per_class_incremental = 1152
lr_step0 = 2.5e-3
lr_incremental = 2.5e-4
lr_min = 0.0
optimizer = dict(
    type='SGD', lr=lr_step0, momentum=0.9, weight_decay=1e-4, nesterov=True)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
# pos_weight 35 at step 0 here; for steps k >= 1 the ADE leaves' method
# fragment, configs/_base_/methods/dkd-ade.py, sets it in the DKD term.
model = dict(
    backbone=dict(norm_cfg=dict(type='BN', requires_grad=True, momentum=0.01)),
    decode_head=dict(
        type='DKDHead',
        head_type='ASPPHead',
        dropout_ratio=0.1,
        loss_decode=[
            dict(type='MultiLabelBCELoss', pos_weight=35.0, loss_weight=1.0),
            dict(type='AuxClassifierLoss', loss_weight=1.0)
        ]))
