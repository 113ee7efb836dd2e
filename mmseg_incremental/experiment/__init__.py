from .compare import compare_runs
from .incremental_experiment import IncrementalExperiment, init_distributed
from .plan import (build_step_config, experiment_task, list_steps,
                   step0_fingerprint_source)
from .report import write_report
from .step0_store import Step0Store
from .summary import metrics_to_summary, method_name, write_summary

__all__ = [
    'IncrementalExperiment', 'init_distributed', 'build_step_config',
    'experiment_task', 'list_steps', 'step0_fingerprint_source', 'Step0Store',
    'metrics_to_summary', 'method_name', 'write_summary', 'write_report',
    'compare_runs'
]
