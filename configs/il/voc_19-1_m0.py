# VOC 19-1: M_0 alone, step 0 only.
_base_ = ['../_base_/ilt_voc_deeplabv2_authors.py', '../_base_/methods/ft.py']
task = '19-1'
max_step = 0
method = 'M0'
