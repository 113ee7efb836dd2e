# Pascal VOC 2012 + SBD ("aug", 10,582 training images), split by the
# incremental task. Layout under data_root (the usual mmseg/DeepLab one):
#   JPEGImages/*.jpg, SegmentationClassAug/*.png (train),
#   SegmentationClass/*.png (val), ImageSets/Segmentation/{train_aug,val}.txt
# Training (the paper, DeepLab-v2): random scale 0.5-1.5 of the image's own
# size, crop to `crop_size` (smaller images are padded with ignore labels by
# the preprocessor), flip. Evaluation at full resolution. The experiment
# applies the top-level `data_root` and `crop_size` to every dataset and
# pipeline (mmseg_incremental/planning/scalars.py).
dataset_type = 'IncrementalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', ratio_range=(0.5, 1.5)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        task='joint',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        task='joint',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IncrementalIoUMetric')
test_evaluator = val_evaluator
