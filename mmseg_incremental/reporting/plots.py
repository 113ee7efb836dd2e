"""The report's two plots (PNG, matplotlib's Agg canvas, no pyplot state).

- ``miou_per_step.png``: mIoU of the old classes (S_0), the new classes
  (S_k minus S_0) and all of S_k after each step (:func:`miou_series`),
  with a reference's mIoU per step as a dashed black line where it applies.
- ``iou_per_class.png``: the IoU of every class of S_K after the last step
  (:func:`iou_bars`), old and new classes in two colours.

The ``*_figure`` functions return the :class:`~matplotlib.figure.Figure`
(its lines and bars hold the plotted values); ``plot_*`` save it.
"""
from typing import Dict, List, NamedTuple, Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .references import Reference
from .run_summary import RunSummary

OLD_COLOR = '#1f77b4'
NEW_COLOR = '#ff7f0e'
ALL_COLOR = '#2ca02c'
UNKNOWN_COLOR = '#7f7f7f'
NAN = float('nan')
#: ``Metrics`` field, legend label and colour of each line of ours.
MIOU_LINES = [
    ('mIoU_old', 'old (S_0)', OLD_COLOR),
    ('mIoU_new', 'new (S_k \\ S_0)', NEW_COLOR),
    ('mIoU', 'all (S_k)', ALL_COLOR),
]


def save_figure(fig: Figure, path: str) -> None:
    """Render ``fig`` on an Agg canvas to the PNG ``path`` (100 dpi)."""
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def miou_series(run: RunSummary) -> Dict[str, List[float]]:
    """``Metrics`` field -> its value after each step in the summary (NaN
    where undefined); fields undefined at every step are left out."""
    out = {}
    for key, _, _ in MIOU_LINES:
        values = [getattr(s.metrics, key) for s in run.steps]
        if any(v is not None for v in values):
            out[key] = [NAN if v is None else v for v in values]
    return out


def miou_figure(run: RunSummary,
                reference: Optional[Reference] = None) -> Figure:
    """The old / new / all mIoU per step, and the reference's mIoU of all
    classes per step (``reference.steps``, None entries skipped)."""
    x = [s.step for s in run.steps]
    fig = Figure(figsize=(max(5.0, 1.1 * len(x) + 2), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    series = miou_series(run)
    for key, label, color in MIOU_LINES:
        if key in series:
            ax.plot(
                x,
                series[key],
                marker='o',
                color=color,
                label=f'ours: {label}')
    if reference is not None and reference.steps is not None:
        known = [(k, v) for k, v in enumerate(reference.steps)
                 if v is not None]
        ax.plot([k for k, _ in known], [v for _, v in known],
                linestyle='--',
                marker='s',
                color='black',
                label=f'{reference.source}: all')
    ax.set_xticks(x)
    ax.set_xticklabels([s.label for s in run.steps], fontsize=8)
    ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    ax.set_ylim(0, 100)
    ax.set_ylabel('mIoU (%)')
    ax.set_title(f'{run.dataset} {run.task}, {run.method}: mIoU after '
                 'each step')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower left')
    return fig


class Bars(NamedTuple):
    """The bars of the per-class plot: class names, heights (0 where the
    IoU is undefined), colours and which bars are undefined."""

    names: List[str]
    heights: List[float]
    colors: List[str]
    undefined: List[bool]


def iou_bars(run: RunSummary) -> Bars:
    """Per-class IoU after the last step: old classes in
    :data:`OLD_COLOR`, new in :data:`NEW_COLOR`, grey where the step that
    learnt the class is unknown."""
    classes = run.class_ious(run.last)
    return Bars([c.name for c in classes],
                [0.0 if c.iou is None else c.iou for c in classes], [
                    UNKNOWN_COLOR if c.learnt_at is None else
                    OLD_COLOR if c.learnt_at == 0 else NEW_COLOR
                    for c in classes
                ], [c.iou is None for c in classes])


def iou_figure(run: RunSummary) -> Figure:
    """Bar chart of :func:`iou_bars`; undefined IoUs are marked ``n/a``."""
    bars = iou_bars(run)
    n = len(bars.names)
    fig = Figure(figsize=(min(max(6.0, 0.38 * n + 1.5), 60.0), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(n), bars.heights, color=bars.colors)
    for i in (i for i, u in enumerate(bars.undefined) if u):
        ax.text(i, 1, 'n/a', ha='center', va='bottom', fontsize=7, rotation=90)
    ax.set_xticks(range(n))
    ax.set_xticklabels(bars.names, rotation=90, fontsize=8)
    ax.set_xlim(-0.6, max(n, 1) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel('IoU (%)')
    ax.set_title(f'Per-class IoU after {run.last.label} ({run.method})')
    for color, label in ((OLD_COLOR, 'old (S_0)'), (NEW_COLOR, 'new'),
                         (UNKNOWN_COLOR, 'step unknown')):
        if color in bars.colors:  # empty bars, for the legend only
            ax.bar([0], [0], color=color, label=label)
    if n:
        ax.legend(fontsize=8, loc='upper right')
    ax.grid(axis='y', alpha=0.3)
    return fig


def plot_miou_per_step(run: RunSummary,
                       path: str,
                       reference: Optional[Reference] = None) -> None:
    """Save :func:`miou_figure` to ``path``."""
    save_figure(miou_figure(run, reference), path)


def plot_iou_per_class(run: RunSummary, path: str) -> None:
    """Save :func:`iou_figure` to ``path``."""
    save_figure(iou_figure(run), path)
