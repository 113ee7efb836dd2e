# VOC 15-1, MiB flavour: disjoint setting, FT.
_base_ = [
    '../_base_/ilt_voc_deeplabv2.py', '../_base_/settings/disjoint.py',
    '../_base_/methods/ft.py'
]
task = '15-1'
