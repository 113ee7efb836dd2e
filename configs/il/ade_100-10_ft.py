# ADE20K 100-10, FT (fine-tuning).
_base_ = ['../_base_/ilt_ade20k_deeplabv2.py', '../_base_/methods/ft.py']
task = '100-10'
