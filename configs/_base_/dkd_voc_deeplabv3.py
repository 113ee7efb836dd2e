# DKD's setup on Pascal VOC 2012 (aug), for the leaves configs/il/dkd/voc_*:
# MiB's network and data (configs/_base_/mib_voc_deeplabv3.py: DeepLab-v3
# R101 at output stride 16, crop 512, MiB's Inception-crop augmentation --
# DKD's data_loader/dataset.py transform_tr is the same
# RandomResizedCrop(512, (0.5, 2.0)) + flip -- and the 512 centre crop for
# evaluation) with DKD's head, optimizer and schedule.
#
# Facts from cvlab-yonsei/DKD (commit fb4693f):
# * scripts/voc/overlapped/train_voc_{19-1,15-5,15-1,10-1,5-3}.sh and
#   README.md ("Training"): 4 GPUs x --bs 8 ("BS=8  # Total 32"),
#   INIT_LR=0.001 at step 0 and LR=0.0001 at steps k >= 1,
#   INIT_POSWEIGHT=2 (--pos_weight 2 at step 0 only), --freeze_bn at every
#   step k >= 1 (configs/_base_/methods/dkd.py).
# * configs/config_voc.json: SGD lr 1e-3, weight_decay 1e-4, momentum 0.9,
#   nesterov; PolyLR; trainer.epochs 60 (the scripts' EPOCH=60 only names
#   the checkpoint); hyperparameter mbce 1, kd 5, dkd_pos 5, dkd_neg 5,
#   ac 1, pos_weight 1; use_amp true; test masking_value 0 (unseen classes
#   as background); val/test transform_args crop_size 512.
# * utils/lr_scheduler.py PolyLR: base_lr * (1 - it / max_iters) ** 0.9,
#   max_iters = epochs x len(train_loader) (train_voc.py:145-149): down to
#   0 (lr_min = 0).
# * train_voc.py:101 `_set_bn_momentum(model.backbone, momentum=0.01)`;
#   :127-143 the backbone at lr, the ASPP and the classifiers at 10 x lr
#   (lr_mult 10 on decode_head below).
# * data_loader/data_loaders.py get_train_loader: DataLoader(batch_size=8
#   per process, DistributedSampler, drop_last=True): an epoch of N images
#   is floor(ceil(N / 4) / 8) iterations; the leaves list each step's
#   60 epochs of DKD's own image lists (data/voc/<setting>_<task>_train_
#   <k>.npy) in iters_per_step.
# * data_loader/dataset.py transform_val (the test set's too): Resize(512)
#   of the short side, CenterCrop(512) -> eval_crop = 512 (inherited).
# * models/modules/aspp.py: Dropout(0.1) in the ASPP (dropout_ratio 0.1;
#   mmseg's ASPPHead puts it before the classifier, DKD before its last 3x3
#   conv).
#
# Not reproduced: DKD's mixed precision (use_amp: fp16 autocast with a
# GradScaler; `amp = 'fp16'` does the same on a GPU, left to the user since
# the config must also build on the CPU), its SyncBatchNorm (bn_sync
# converted by convert_sync_batchnorm under DDP; plain BN keeps statistics
# per process, as the MiB/PLOP setups: norm_cfg=dict(type='SyncBN', ...)
# for several GPUs), its ASPP layout and Kaiming initialisation (see
# docs/methods.md, DKD).
_base_ = ['./mib_voc_deeplabv3.py']
total_batch_size = 32
# Only a leaf of 15-1 overlapped's step lengths would use these (every
# leaf lists iters_per_step): 60 epochs of data/voc/overlap_15-1_train_<k>
# .npy: step 0 9,568 images -> 299 it/epoch x 60 = 17,940 / 16 classes =
# 1,121.25; steps 1-5: 487, 299, 491, 500, 548 -> 15, 9, 15, 15, 17 x 60 =
# 4,260 in all / 5 classes = 852.
iters_per_class = 1121
iters_per_class_incremental = 852
lr_step0 = 1e-3
lr_incremental = 1e-4
lr_min = 0.0
optimizer = dict(
    type='SGD', lr=lr_step0, momentum=0.9, weight_decay=1e-4, nesterov=True)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
model = dict(
    backbone=dict(norm_cfg=dict(type='BN', requires_grad=True, momentum=0.01)),
    decode_head=dict(
        type='DKDHead',
        head_type='ASPPHead',
        dropout_ratio=0.1,
        loss_decode=[
            dict(type='MultiLabelBCELoss', pos_weight=2.0, loss_weight=1.0),
            dict(type='AuxClassifierLoss', loss_weight=1.0)
        ]))
