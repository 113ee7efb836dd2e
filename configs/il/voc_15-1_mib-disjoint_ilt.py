# VOC 15-1, MiB flavour: disjoint setting, ILT as MiB re-ran it (variant='mib', lambda=100).
_base_ = [
    '../_base_/ilt_voc_deeplabv2.py', '../_base_/settings/disjoint.py',
    '../_base_/methods/mib-ilt.py'
]
task = '15-1'
