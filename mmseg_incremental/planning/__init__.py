"""From an experiment config to the mmengine config of each step.

``settings`` declares the experiment's top-level settings once (type,
default, allowed values) and checks a config's; ``plan`` derives step k's
config (datasets of the step, classifier size, the incremental segmentor
of the method, the schedule); ``scalars`` applies the user's top-level
``data_root``/``crop_size``/``pretrained``/``total_batch_size``;
``schedule`` stretches the user's schedule to the step; ``init_files``
hashes and reports step 0's initialisation. Nothing here runs a model:
:mod:`mmseg_incremental.experiment` does.
"""
from .deploy import deploy_config
from .init_files import file_sha256, init_message, init_sources
from .plan import (build_step_config, data_content_key,
                   experiment_fingerprint_source,
                   experiment_task, fingerprint, iter_incremental_datasets,
                   list_steps, step0_fingerprint_source,
                   step_fingerprint_source, step_iters)
from .scalars import config_data_roots, per_process_batch, total_batch
from .schedule import patch_schedule
from .settings import (EXPERIMENT_KEYS, SETTINGS, Setting, check_settings,
                       setting_sources, setting_value, settings_markdown)

__all__ = [
    'EXPERIMENT_KEYS', 'build_step_config', 'data_content_key',
    'experiment_fingerprint_source',
    'experiment_task', 'fingerprint', 'iter_incremental_datasets',
    'list_steps', 'step0_fingerprint_source', 'step_fingerprint_source',
    'step_iters', 'file_sha256',
    'init_message', 'init_sources', 'per_process_batch', 'total_batch',
    'patch_schedule', 'deploy_config', 'config_data_roots', 'SETTINGS',
    'Setting', 'check_settings', 'setting_sources', 'setting_value',
    'settings_markdown'
]
