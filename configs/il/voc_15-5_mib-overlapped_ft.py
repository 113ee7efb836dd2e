# VOC 15-5, MiB flavour: overlapped setting, FT.
_base_ = [
    '../_base_/ilt_voc_deeplabv2.py', '../_base_/settings/overlapped.py',
    '../_base_/methods/ft.py'
]
task = '15-5'
