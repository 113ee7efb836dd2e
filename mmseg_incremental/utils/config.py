# Copyright (c) OpenMMLab. All rights reserved.
"""Inheriting this package's configs from any folder.

The package ships the repository's ``configs/`` folder as
``mmseg_incremental/.mim/configs`` (mmengine's place for a package's
configs), so a config anywhere can inherit one as
``_base_ = ['mmseg_incremental::il/voc_19-1_ld.py']``. Two things make
mmengine accept that spelling:

- :func:`register_config_package` (run by ``import mmseg_incremental``)
  adds the package to mmengine's ``MODULE2PACKAGE``, which otherwise lists
  OpenMMLab's own packages only. mmengine finds the package folder with
  ``get_installed_path(MODULE2PACKAGE[name])``: a distribution name would
  resolve to ``<site-packages>/mmseg_incremental``, which a PEP 660
  editable install (``pip install -e .``) does not have; a module of the
  package, which no distribution is called, makes it fall back to
  ``importlib.util.find_spec`` and so to the folder Python imports the
  package from, in a wheel install, an editable one or on ``PYTHONPATH``.
- :func:`load_config` drops the ``_scope_='mmseg_incremental'`` that
  mmengine writes into every ``type`` dict of a ``pkg::`` base. This
  package registers its components in mmseg's registries (scope
  ``mmseg``) and has no registry of its own: a build under that scope
  falls back to mmengine's root registries and fails (``EncoderDecoder is
  not in the mmengine::model registry``). Without it, the inherited
  config equals the repository's file exactly.
"""
from typing import Any

from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE

#: The ``pkg`` of ``pkg::path`` bases that name this package's configs.
CONFIG_SCOPE = 'mmseg_incremental'
# A module directly inside the package folder (see the module docstring).
_PACKAGE_MODULE = 'mmseg_incremental.version'


def register_config_package() -> None:
    """Let mmengine resolve ``mmseg_incremental::<path>`` config bases."""
    MODULE2PACKAGE.setdefault(CONFIG_SCOPE, _PACKAGE_MODULE)


def drop_config_scope(cfg: Any) -> Any:
    """Remove ``_scope_='mmseg_incremental'`` from every dict of ``cfg``.

    Works in place on dicts (and the dicts inside lists and tuples) and
    returns ``cfg``. Other scopes (``_scope_='mmseg'`` of ``mmseg::``
    bases) are kept.
    """
    if isinstance(cfg, dict):
        if cfg.get('_scope_') == CONFIG_SCOPE:
            cfg.pop('_scope_')
        for value in cfg.values():
            drop_config_scope(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            drop_config_scope(value)
    return cfg


def load_config(filename: str) -> Config:
    """``Config.fromfile(filename)`` for configs that may inherit this
    package's configs through ``mmseg_incremental::`` bases.

    Every tool of the package loads its configs with this function; use it
    (instead of ``Config.fromfile``) to load such a config in Python.
    """
    register_config_package()
    cfg = Config.fromfile(filename)
    for key in list(cfg.keys()):
        drop_config_scope(cfg[key])
    return cfg
