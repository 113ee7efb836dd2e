# Embedded benchmark 15-5, MiB flavour (disjoint, ilt).
_base_ = [
    '../_base_/embedded_deeplabv2_tiny.py', '../_base_/settings/disjoint.py',
    '../_base_/methods/mib-ilt.py'
]
task = '15-5'
