# DKD on ADE20K: pos_weight 35 at every step (cvlab-yonsei/DKD
# configs/config_ade.json; the ADE scripts never pass --pos_weight), here
# for the DKD term's losses of steps k >= 1 (step 0's head takes it from
# configs/_base_/dkd_ade_deeplabv3.py).
_base_ = ['./dkd.py']
incremental = dict(
    distill_terms=dict(
        dkd=dict(loss_decode=[
            dict(type='MultiLabelBCELoss', pos_weight=35.0, loss_weight=1.0),
            dict(type='AuxClassifierLoss', loss_weight=1.0)
        ])))
