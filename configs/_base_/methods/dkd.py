# DKD (Baek et al., NeurIPS 2022): sigmoid classifiers with an auxiliary
# classifier, knowledge distillation of the old classes' outputs and of the
# positive and negative parts of their classifiers' responses (decomposed
# KD), new classifier rows initialised from the auxiliary classifier, and
# every BatchNorm and dropout frozen at steps k >= 1.
# Source: cvlab-yonsei/DKD (commit fb4693f): configs/config_voc.json
# (hyperparameter: pos_weight 1, mbce 1, kd 5, dkd_pos 5, dkd_neg 5, ac 1;
# SGD lr 1e-3, weight decay 1e-4, momentum 0.9, Nesterov; PolyLR),
# scripts/voc/overlapped/train_voc_*.sh (lr 1e-3 at step 0 and 1e-4 after,
# --pos_weight 2 at step 0, --freeze_bn at every step k >= 1, 60 epochs,
# batch 4 x 8), train_voc.py (the optimizer groups, init_novel_classifier),
# trainer/trainer_voc.py (the losses, inference). The facts with their
# lines: mmseg_incremental/models/terms/dkd.py, .../losses/dkd_loss.py,
# .../decode_heads/dkd_head.py.
#
# This fragment sets what steps k >= 1 add (`incremental`). DKD also
# changes step 0 -- its head and losses, its learning rates -- so a DKD
# leaf sets these too (a `_base_` fragment cannot: mmengine refuses a key,
# such as `model` or `optim_wrapper`, that two bases both set):
#
#   model = dict(decode_head=dict(
#       type='DKDHead', head_type='ASPPHead',      # any head with conv_seg
#       loss_decode=[dict(type='MultiLabelBCELoss', pos_weight=2.0),
#                    dict(type='AuxClassifierLoss')]))
#   # train_voc.py:127-143: backbone at lr, ASPP and classifiers at 10 lr
#   optim_wrapper = dict(paramwise_cfg=dict(
#       custom_keys={'decode_head': dict(lr_mult=10.0)}))
#
# DKD's weight decay differs between steps (every group at step 0; only the
# new classifier at steps k >= 1): the term's DKDHook and its
# `new_class_weight_decay` do the steps k >= 1. DKD evaluates unseen classes
# as background (data_loader/dataset.py, masking_value 0 for the test set):
# eval_protocol = 'unseen_as_background'.
_base_ = ['./ft.py']
method = 'DKD'
incremental = dict(
    distill_terms=dict(
        dkd=dict(
            type='DKDTerm',
            loss_decode=[
                dict(
                    type='MultiLabelBCELoss', pos_weight=1.0, loss_weight=1.0),
                dict(type='AuxClassifierLoss', loss_weight=1.0)
            ],
            kd=5.0,
            dkd_pos=5.0,
            dkd_neg=5.0,
            init_from_aux=True,
            freeze_bn=True,
            weight_decay=0.0,
            new_class_weight_decay=1e-4)),
    new_class_init='default')
