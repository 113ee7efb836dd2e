"""The report's two plots (PNG, matplotlib's Agg canvas, no pyplot state).

- ``miou_per_step.png``: mIoU of the old classes (S_0), the new classes
  (S_k minus S_0) and all of S_k after each step, with the paper's mIoU per
  step as a dashed line where it is known.
- ``iou_per_class.png``: the IoU of every class of S_K after the last step,
  old classes and new classes in two colours.
"""
from typing import Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .paper_results import PAPER_LABEL
from .run_results import class_ious, num, step_label

OLD_COLOR = '#1f77b4'
NEW_COLOR = '#ff7f0e'
ALL_COLOR = '#2ca02c'
UNKNOWN_COLOR = '#7f7f7f'


def _nan(value) -> float:
    value = num(value)
    return float('nan') if value is None else value


def _save(fig: Figure, path: str) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_miou_per_step(
        summary: dict,
        path: str,
        paper_steps: Optional[Sequence[Optional[float]]] = None) -> None:
    """Plot old / new / all mIoU per step to ``path``.

    Args:
        summary (dict): The experiment's ``summary.json``.
        path (str): The PNG to write.
        paper_steps (Sequence[float | None], optional): The paper's mIoU of
            all classes per step (None where unknown).
    """
    steps = summary['steps']
    x = [e['step'] for e in steps]
    fig = Figure(figsize=(max(5.0, 1.1 * len(x) + 2), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for key, label, color in (('mIoU_old', 'old (S_0)', OLD_COLOR),
                              ('mIoU_new', 'new (S_k \\ S_0)',
                               NEW_COLOR), ('mIoU', 'all (S_k)', ALL_COLOR)):
        y = [_nan(e['metrics'].get(key)) for e in steps]
        if all(v != v for v in y):  # all NaN: nothing to draw
            continue
        ax.plot(x, y, marker='o', color=color, label=f'ours: {label}')
    if paper_steps is not None:
        px = [k for k, v in enumerate(paper_steps) if v is not None]
        py = [v for v in paper_steps if v is not None]
        ax.plot(
            px,
            py,
            linestyle='--',
            marker='s',
            color='black',
            label=f'{PAPER_LABEL}: all')
    ax.set_xticks(x)
    ax.set_xticklabels([step_label(e) for e in steps], fontsize=8)
    ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    ax.set_ylim(0, 100)
    ax.set_ylabel('mIoU (%)')
    ax.set_title(f'{summary.get("dataset", "")} {summary.get("task", "")}, '
                 f'{summary.get("method", "")}: mIoU after each step')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower left')
    _save(fig, path)


def plot_iou_per_class(summary: dict, path: str) -> None:
    """Bar chart of the per-class IoU after the last step to ``path``;
    classes without an IoU (absent from labels and predictions) are marked
    ``n/a``."""
    entry = summary['steps'][-1]
    classes = class_ious(summary, entry)
    n = max(len(classes), 1)
    fig = Figure(figsize=(min(max(6.0, 0.38 * n + 1.5), 60.0), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    colors = [
        UNKNOWN_COLOR if c.learnt_at is None else
        OLD_COLOR if c.learnt_at == 0 else NEW_COLOR for c in classes
    ]
    heights = [0.0 if c.iou is None else c.iou for c in classes]
    ax.bar(range(len(classes)), heights, color=colors)
    for i, c in enumerate(classes):
        if c.iou is None:
            ax.text(
                i, 1, 'n/a', ha='center', va='bottom', fontsize=7, rotation=90)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels([c.name for c in classes], rotation=90, fontsize=8)
    ax.set_xlim(-0.6, max(len(classes), 1) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel('IoU (%)')
    ax.set_title(f'Per-class IoU after {step_label(entry)} '
                 f'({summary.get("method", "")})')
    for color, label in ((OLD_COLOR, 'old (S_0)'), (NEW_COLOR, 'new'),
                         (UNKNOWN_COLOR, 'step unknown')):
        if color in colors:  # empty bars, for the legend only
            ax.bar([0], [0], color=color, label=label)
    if colors:
        ax.legend(fontsize=8, loc='upper right')
    ax.grid(axis='y', alpha=0.3)
    _save(fig, path)
