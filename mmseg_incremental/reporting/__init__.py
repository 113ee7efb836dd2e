"""Reports of incremental experiments, read from ``D/summary.json``.

.. code:: text

    summary.json -> RunSummary (run_summary) ─┬─ write_report -> report.md,
                                              │   metrics.csv, *.png
    references (published rows + conditions) ─┼─ compare_runs -> comparison.md,
    rows (Row, Column: every table) ──────────┘   .csv, comparison.png
"""
from .compare import compare_runs
from .references import (MIB_LABEL, PAPER_LABEL, REFERENCES, MethodConfig,
                         OutputDistill, Reference, ReferenceCondition,
                         ReferenceMatch, match_references)
from .report import write_report
from .rows import Column, Row
from .run_summary import (Metrics, OldNewAll, RunSummary, StepResult,
                          SummaryError)

__all__ = [
    'write_report', 'compare_runs', 'RunSummary', 'StepResult', 'Metrics',
    'OldNewAll', 'SummaryError', 'Row', 'Column', 'Reference',
    'ReferenceCondition', 'ReferenceMatch', 'MethodConfig', 'OutputDistill',
    'REFERENCES', 'PAPER_LABEL', 'MIB_LABEL', 'match_references'
]
