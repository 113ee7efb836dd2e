# VOC 19-1, MiB flavour: disjoint setting, FT.
_base_ = [
    '../_base_/ilt_voc_deeplabv2.py', '../_base_/settings/disjoint.py',
    '../_base_/methods/ft.py'
]
task = '19-1'
