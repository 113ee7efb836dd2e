# VOC joint training of all 21 classes in one step: the upper bound.
_base_ = ['../_base_/ilt_voc_deeplabv2_authors.py', '../_base_/methods/ft.py']
task = 'joint'
method = 'joint'
