# DeepLab-v3 (ResNet-101, output stride 16, ASPP with image pooling): the
# network of MiB (Cermelli et al., CVPR 2020) and PLOP (Douillard et al.,
# CVPR 2021), in mmseg's components. Facts from fcdl94/MiB (commit 1c58983)
# and arthurdouillard/CVPR2021_PLOP (commit 4b4a060), the same in both:
#
# * argparser.py: --backbone resnet101, --output_stride 16, --norm_act
#   iabn_sync (in-place ABN, synchronised, leaky ReLU 0.01), --fix_bn off:
#   batch norm is trained (statistics and affine parameters).
# * models/resnet.py: output stride 16 -> dilation [1, 1, 1, 2]; a stage
#   whose dilation is 1 strides by 2 in its first block (except the first
#   stage), so strides (1, 2, 2, 1) and dilations (1, 1, 1, 2), the first
#   block of the last stage already dilated (no contraction); the 3x3 conv
#   of a bottleneck strides (mmseg's style='pytorch'); 7x7 stem + max pool.
# * modules/deeplab.py (DeeplabV3): 256 hidden channels; a 1x1 branch and
#   3x3 branches dilated (6, 12, 18) at output stride 16, plus a global
#   average-pooling branch; segmentation_module.py: head_channels = 256,
#   the classifier is a 1x1 conv on them, no dropout.
# * PLOP's POD (train.py / models/resnet.py) reads the four stages' outputs
#   and the head's: out_indices=(0, 1, 2, 3), the head reads stage 3.
# * Both normalise the input with ImageNet's RGB mean/std
#   (run.py: Normalize(mean=[0.485, 0.456, 0.406],
#   std=[0.229, 0.224, 0.225])) and start from an ImageNet ResNet-101.
# * train.py: nn.CrossEntropyLoss(ignore_index=255, reduction='none') then
#   loss.mean(): the mean runs over all pixels, ignored ones counting 0
#   (mmseg's avg_non_ignore=False).
#
# Known differences with mmseg's parts: mmseg's ASPPHead concatenates the
# pooled branch with the four others and fuses them with a 3x3 conv (MiB
# adds the pooled branch after a 1x1 reduction, and at test time pools
# 32x32 windows instead of the whole image, --pooling 32); BN + ReLU
# instead of in-place ABN with leaky ReLU 0.01; ImageNet weights from
# torchvision (set `pretrained`, see deeplabv2_r101-d8.py) instead of
# in-place ABN's; the stage outputs POD reads are after the stage's last
# ReLU (PLOP's before its last activation). Plain BN keeps statistics per
# process: with several GPUs, dict(type='SyncBN', requires_grad=True) as
# the backbone's and the head's norm_cfg follows iabn_sync.
#
# A `_base_` primitive, like deeplabv2_r101-d8.py: `pretrained`,
# `norm_cfg`, `data_preprocessor` and `model` only.
pretrained = None
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=pretrained,
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=False),
    decode_head=dict(
        type='ASPPHead',
        in_channels=2048,
        in_index=3,
        channels=256,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.0,
        num_classes=21,
        norm_cfg=norm_cfg,
        align_corners=False,
        ignore_index=255,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            avg_non_ignore=False,
            loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
