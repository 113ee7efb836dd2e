# The paper's setup on VOC: DeepLab-v2 R101 (OS 8, frozen BN), crop 321,
# batch 4, the ILT schedule. A leaf adds `task` and a method.
_base_ = [
    './models/deeplabv2_r101-d8.py', './datasets/voc12aug_incremental.py',
    './schedules/ilt_schedule.py', './default_runtime.py'
]
crop_size = (321, 321)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
