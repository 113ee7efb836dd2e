# mmseg's runtime, plus the plugin import and a fixed seed (resume and the
# step-0 store rely on runs being reproducible).
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_incremental'], allow_failed_imports=False)
randomness = dict(seed=0)
