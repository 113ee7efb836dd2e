# Embedded benchmark, VOC-format 15-5, method fd (see configs/il/ for the paper's).
_base_ = ['../_base_/embedded_deeplabv2_tiny.py', '../_base_/methods/fd.py']
task = '15-5'
