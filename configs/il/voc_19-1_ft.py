# VOC 19-1, FT (fine-tuning): the paper's row (ILT, Tables 1-4).
_base_ = ['../_base_/ilt_voc_deeplabv2_authors.py', '../_base_/methods/ft.py']
task = '19-1'
