# Embedded benchmark 15-5, DKD, overlapped setting: the 15-1 leaf's setup
# (DKDHead on the tiny ASPP, DKD's evaluation) on task 15-5.
_base_ = ['./bench_15-1_dkd-overlapped.py']
task = '15-5'
