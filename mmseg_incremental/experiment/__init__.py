from ..planning import (build_step_config, experiment_task, list_steps,
                        step0_fingerprint_source)
from .check_splits import check_splits, train_split_sizes
from .dry_run import describe_plan
from .incremental_experiment import IncrementalExperiment, init_distributed
from .process_lock import ProcessLock
from .resume import find_resume_checkpoint
from .step0_store import Step0Store
from .summary import metrics_to_summary, method_name, write_summary
from .work_dir_lock import lock_work_dir

__all__ = [
    'IncrementalExperiment', 'init_distributed', 'build_step_config',
    'experiment_task', 'list_steps', 'step0_fingerprint_source', 'Step0Store',
    'metrics_to_summary', 'method_name', 'write_summary',
    'check_splits', 'train_split_sizes', 'describe_plan', 'ProcessLock',
    'find_resume_checkpoint', 'lock_work_dir'
]
