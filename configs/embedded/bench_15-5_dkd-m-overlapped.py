# Embedded benchmark 15-5, DKD-M: DKD with a class-balanced exemplar memory
# of 100 images (memory_size), overlapped setting.
_base_ = ['./bench_15-5_dkd-overlapped.py']
method = 'DKD-M'
memory_size = 100
