# VOC 15-5: M_0 alone, step 0 only (also M_0 of 15-1: same S_0).
_base_ = ['../_base_/ilt_voc_deeplabv2_authors.py', '../_base_/methods/ft.py']
task = '15-5'
max_step = 0
method = 'M0'
