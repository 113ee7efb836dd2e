# Embedded benchmark 15-5, MiB, overlapped setting, MiB's evaluation (unseen
# classes ignored; after the last step no class is unseen, so the final
# numbers equal those of the other overlapped rows' protocol). The tiny
# setup's schedule, as every bench_* config.
_base_ = [
    '../_base_/embedded_deeplabv2_tiny.py', '../_base_/settings/overlapped.py',
    '../_base_/methods/mib.py'
]
task = '15-5'
eval_protocol = 'mask_unseen'
