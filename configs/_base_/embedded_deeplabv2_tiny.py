# The demo/test setup: tiny DeepLab-v2 on the embedded benchmark, the ILT
# schedule's shape (poly to lr_min, |S_0|*it then |U_k|*it iterations, half
# the lr after step 0) at CPU scale.
_base_ = [
    './models/deeplabv2_r18-tiny.py', './datasets/embedded_voc.py',
    './schedules/ilt_schedule.py', './default_runtime.py'
]
iters_per_class = 40
lr_step0 = 0.02
lr_incremental = 0.01
lr_min = 1e-4
env_cfg = dict(cudnn_benchmark=False)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=100, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
total_batch_size = 16
