# ADE20K 50-50, L'_D (output distillation).
_base_ = ['../_base_/ilt_ade20k_deeplabv2.py', '../_base_/methods/ld.py']
task = '50-50'
