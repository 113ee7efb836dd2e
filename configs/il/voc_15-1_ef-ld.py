# VOC 15-1, EF + L'_D: the paper's row (ILT, Tables 1-4).
_base_ = ['../_base_/ilt_voc_deeplabv2_authors.py', '../_base_/methods/ef-ld.py']
task = '15-1'
