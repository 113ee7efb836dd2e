# Embedded benchmark 15-1, PLOP, overlapped setting, PLOP's evaluation
# (unseen classes as background). The tiny setup's schedule and network (its
# backbone returns the last stage only: POD's stage features are the
# segmentor's to collect).
_base_ = [
    '../_base_/embedded_deeplabv2_tiny.py', '../_base_/settings/overlapped.py',
    '../_base_/methods/plop.py'
]
task = '15-1'
eval_protocol = 'unseen_as_background'
