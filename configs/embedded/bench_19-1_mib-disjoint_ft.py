# Embedded benchmark 19-1, MiB flavour (disjoint, ft).
_base_ = [
    '../_base_/embedded_deeplabv2_tiny.py', '../_base_/settings/disjoint.py',
    '../_base_/methods/ft.py'
]
task = '19-1'
