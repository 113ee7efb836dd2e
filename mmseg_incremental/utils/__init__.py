# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint import (SAFE_ATTRIBUTES, register_safe_globals,
                         restricted_getattr, safe_globals)
from .config import (CONFIG_SCOPE, drop_config_scope, load_config,
                     register_config_package)

# mmengine checkpoints (numpy arrays, HistoryBuffer) must load under
# torch.load(weights_only=True): allowlist their globals on import.
register_safe_globals()
# Configs anywhere may inherit ours as `mmseg_incremental::<path>`.
register_config_package()

__all__ = [
    'SAFE_ATTRIBUTES', 'register_safe_globals', 'restricted_getattr',
    'safe_globals', 'CONFIG_SCOPE', 'drop_config_scope', 'load_config',
    'register_config_package'
]
