# Embedded benchmark, VOC-format 19-1, method ld (see configs/il/ for the paper's).
_base_ = ['../_base_/embedded_deeplabv2_tiny.py', '../_base_/methods/ld.py']
task = '19-1'
