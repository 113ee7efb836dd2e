# DeepLab-v2 (ResNet-101, output stride 8, ASPP-v2 summed, no CRF): the
# network of Michieli & Zanuttigh, "Incremental Learning Techniques for
# Semantic Segmentation" (ICCVW 2019). Step 0 trains this EncoderDecoder;
# the configs of steps k > 0 turn it into a DistillEncoderDecoder.
#
# A `_base_` primitive: it defines only `pretrained`, `norm_cfg`,
# `data_preprocessor` and `model`, because mmengine refuses a key defined in
# two bases. `custom_imports` (the plugin, for DeepLabV2Head) and
# `default_scope = 'mmseg'` come from `configs/_base_/default_runtime.py`,
# the crop size (`data_preprocessor = dict(size=crop_size)`) from the leaf,
# as in mmseg. Used alone (Config.fromfile + MODELS.build), first
# `import mmseg_incremental` and call
# `mmseg.utils.register_all_modules(init_default_scope=True)`.
#
# BN is frozen as in the authors' code: BN weights/biases never learn
# (norm_cfg requires_grad=False) and their statistics stay fixed
# (norm_eval=True), so a batch of 4 is fine.
#
# L_CE is averaged over the labelled pixels (avg_non_ignore=True), as in the
# authors' code and torch's cross_entropy (mmseg's default divides by all).
#
# Pretrained weights come from a local file (nothing is downloaded): set the
# top-level ``pretrained`` (in a leaf config or with
# ``--cfg-options pretrained=/path/to/resnet101.pth``); the experiment tool
# passes it to step 0's ``model.pretrained`` and logs the file's SHA-256
# (later steps start from M_{k-1}). Under mmseg's stock tools/train.py set
# ``model.pretrained`` itself: a child's scalar does not reach this base.
# * ImageNet, no conversion needed: torchvision's ResNet-101 checkpoint
#   (resnet101-63fe2227.pth, a plain state dict) uses exactly this
#   backbone's key names (conv1, bn1, layerX.Y.convZ/bnZ,
#   layerX.0.downsample.{0,1}); its ``fc.*`` keys are reported as unexpected
#   and skipped. Keep the RGB ImageNet mean/std below (torchvision's).
#   Tested: tests/test_experiment/test_user_path.py.
# * MSCOCO-pretrained DeepLab-v2 (the paper's start): rename the Caffe/TF
#   DeepLab ResNet-101 weights to the keys above (bn_conv1 -> bn1,
#   res2a_branch2a -> layer1.0.conv1, bn2a_branch2a -> layer1.0.bn1,
#   res2a_branch1 -> layer1.0.downsample.0, ...), save them as a plain
#   state dict and set ``pretrained`` to it. The Caffe model strides in the
#   first 1x1 conv of a block (``model.backbone.style='caffe'``) and was
#   trained on BGR images minus the mean, without std, so match its input:
#   ``data_preprocessor = dict(mean=[104.008, 116.669, 122.675],
#   std=[1.0, 1.0, 1.0], bgr_to_rgb=False)`` (and the same in
#   ``model.data_preprocessor``).
pretrained = None
norm_cfg = dict(type='BN', requires_grad=False)
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
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='pytorch',
        contract_dilation=False),
    decode_head=dict(
        type='DeepLabV2Head',
        in_channels=2048,
        in_index=3,
        dilations=(6, 12, 18, 24),
        dropout_ratio=0.0,
        num_classes=21,
        align_corners=False,
        ignore_index=255,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
