# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint import (SAFE_ATTRIBUTES, register_safe_globals,
                         restricted_getattr, safe_globals)

# mmengine checkpoints (numpy arrays, HistoryBuffer) must load under
# torch.load(weights_only=True): allowlist their globals on import.
register_safe_globals()

__all__ = [
    'SAFE_ATTRIBUTES', 'register_safe_globals', 'restricted_getattr',
    'safe_globals'
]
