# Embedded benchmark 15-1, DKD-M: DKD with a class-balanced exemplar memory
# of 100 images of the previous steps (cvlab-yonsei/DKD README, "DKD-M";
# utils/memory.py), overlapped setting.
_base_ = ['./bench_15-1_dkd-overlapped.py']
method = 'DKD-M'
memory_size = 100
