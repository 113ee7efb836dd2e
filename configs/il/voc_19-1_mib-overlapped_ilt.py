# VOC 19-1, MiB flavour: overlapped setting, ILT as MiB re-ran it (variant='mib', lambda=100).
_base_ = [
    '../_base_/ilt_voc_deeplabv2.py', '../_base_/settings/overlapped.py',
    '../_base_/methods/mib-ilt.py'
]
task = '19-1'
