# The paper's setup on VOC: DeepLab-v2 R101 (OS 8, frozen BN), crop 321,
# a total batch of 4 (split over the processes: 4 x 1 GPU, 2 x 2, 1 x 4),
# the ILT schedule. A leaf adds `task` and a method.
_base_ = [
    './models/deeplabv2_r101-d8.py', './datasets/voc12aug_incremental.py',
    './schedules/ilt_schedule.py', './default_runtime.py'
]
crop_size = (321, 321)
# A checkpoint every 10 % of a step: a hard kill (no SIGTERM first) loses
# at most a tenth of it (SIGTERM/SIGINT/SIGUSR1 save the current iteration).
checkpoints_per_step = 10
total_batch_size = 4
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
