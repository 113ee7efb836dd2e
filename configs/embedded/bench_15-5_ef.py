# Embedded benchmark, VOC-format 15-5, method ef (see configs/il/ for the paper's).
_base_ = ['../_base_/embedded_deeplabv2_tiny.py', '../_base_/methods/ef.py']
task = '15-5'
