"""The knob ablation's table: one row per knob, old / new / all mIoU of
each method after the last step (runs of
:func:`mmseg_incremental.studies.knob_ablation.run_knob_ablation`)."""
from typing import Dict, List, Sequence, Tuple

from .run_summary import RunSummary
from .tables import fmt, md_table


def ablation_table(runs: Sequence[Tuple[str, str, str]]) -> str:
    """Markdown: one row per knob, old / new / all mIoU of each method after
    the last step."""
    methods: List[str] = []
    values: Dict[Tuple[str, str], Tuple] = {}
    for label, _, run_dir in runs:
        summary = RunSummary.load(run_dir)
        last = summary.steps[-1].metrics
        if summary.method not in methods:
            methods.append(summary.method)
        values[(label, summary.method)] = (last.mIoU_old, last.mIoU_new,
                                           last.mIoU)
    labels = list(dict.fromkeys(label for label, _, _ in runs))
    header = ['knob'] + [
        f'{m} {part}' for m in methods for part in ('old', 'new', 'all')
    ]
    rows = [[label] + [
        fmt(v) for m in methods
        for v in values.get((label, m), (None, None, None))
    ] for label in labels]
    return md_table(header, rows, numeric_from=1)
