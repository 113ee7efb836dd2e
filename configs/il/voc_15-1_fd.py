# VOC 15-1, L''_D (feature distillation): the paper's row (ILT, Tables 1-4).
_base_ = ['../_base_/ilt_voc_deeplabv2_authors.py', '../_base_/methods/fd.py']
task = '15-1'
# The authors' L''_D script decays the lr over the step (codes/LD2/script.job,
# --decay_steps 1000), unlike their L'_D and EF scripts.
lr_decay_horizon = 1
