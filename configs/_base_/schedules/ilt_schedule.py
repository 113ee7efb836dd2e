# The paper's schedule (ILT §4, DESIGN §3): SGD, momentum 0.9, weight decay
# 1e-4, poly decay (power 0.9) to 1e-6. Step 0: lr 1e-4 over |S_0|*1000
# iterations; step k: lr 5e-5 over |U_k|*1000 iterations. The experiment
# tool derives each step's iterations and lr from the scalars below; the
# concrete values here are those of step 0 of VOC 19-1 (|S_0| = 20), so the
# file also trains M_0 under mmseg's stock tools/train.py.
iters_per_class = 1000
lr_step0 = 1e-4
lr_incremental = 5e-5
lr_min = 1e-6

optimizer = dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-6,
        power=0.9,
        begin=0,
        end=20000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=20001)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1000,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
