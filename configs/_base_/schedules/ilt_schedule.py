# The paper's schedule (ILT §4, docs/design.md §3): SGD, momentum 0.9,
# weight decay 1e-4, poly decay (power 0.9) to 1e-6. Step 0: lr 1e-4 over
# |S_0|*1000 iterations; step k: lr 5e-5 over |U_k|*1000 iterations. The
# four scalars below are the one source of truth: the experiment stretches
# the schedulers that run to the end of training (here the poly) to each
# step's length, sets their eta_min to lr_min and the optimizer's lr to the
# step's, and keeps anything else a user adds (a warmup LinearLR, say) as
# written (mmseg_incremental/planning/schedule.py). The lengths written
# here (20 classes, VOC 19-1's step 0) only make the file a complete mmseg
# config; each step's step_config.py holds its real schedule. The four
# values are the paper's, set here explicitly; they equal the settings'
# defaults, which are declared only in mmseg_incremental/planning/settings.py
# (docs/settings.md).
iters_per_class = 1000
lr_step0 = 1e-4
lr_incremental = 5e-5
lr_min = 1e-6

optimizer = dict(type='SGD', lr=lr_step0, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=lr_min,
        power=0.9,
        begin=0,
        end=20 * iters_per_class,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=20 * iters_per_class,
    val_interval=20 * iters_per_class + 1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, written crash-safe (temporary file, fsync,
    # rename; last_checkpoint updated before an old checkpoint goes).
    checkpoint=dict(
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=1000,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
