# The ILT setup on ADE20K (151 classes with "other" as background), crop
# 321 and a total batch of 4 as on VOC.
_base_ = [
    './models/deeplabv2_r101-d8.py', './datasets/ade20k_incremental.py',
    './schedules/ilt_schedule.py', './default_runtime.py'
]
crop_size = (321, 321)
# A checkpoint every 10 % of a step: a hard kill (no SIGTERM first) loses
# at most a tenth of it (SIGTERM/SIGINT/SIGUSR1 save the current iteration).
checkpoints_per_step = 10
total_batch_size = 4
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
