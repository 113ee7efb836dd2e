"""The plots hold the summary's values: line and bar data, and the colours
at known pixels of the saved PNG."""
import math

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image
from test_reporting.utils import entry, summary, voc_19_1, voc_joint

from mmseg_incremental.reporting import PAPER_LABEL, RunSummary
from mmseg_incremental.reporting.plots import (NEW_COLOR, OLD_COLOR,
                                               UNKNOWN_COLOR, iou_bars,
                                               iou_figure, miou_figure,
                                               miou_series, save_figure)
from mmseg_incremental.reporting.references import find_reference


def same(a, b):
    """Equal lists where NaN equals NaN."""
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))


def rgb(color):
    return tuple(round(255 * v) for v in to_rgb(color))


def png_pixel(path, fig, ax, x, y):
    """The RGB colour of the PNG at data point (x, y) of ``ax``."""
    px, py = ax.transData.transform((x, y))
    with Image.open(path) as img:
        pixels = np.asarray(img.convert('RGB'))
    assert pixels.shape[:2] == (round(fig.bbox.height), round(fig.bbox.width))
    return tuple(
        int(v) for v in pixels[pixels.shape[0] - int(round(py)),
                               int(round(px))])


def test_miou_lines_hold_the_summary_values(tmp_path):
    run = RunSummary.from_dict(voc_19_1())
    series = miou_series(run)
    assert same(series['mIoU_old'], [60.0, 59.5])
    assert same(series['mIoU_new'], [math.nan, 30.0])
    assert same(series['mIoU'], [60.0, 58.0])
    paper = find_reference(PAPER_LABEL, '19-1', "L'_D")
    fig = miou_figure(run, paper)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert set(lines) == {
        'ours: old (S_0)', 'ours: new (S_k \\ S_0)', 'ours: all (S_k)',
        f'{PAPER_LABEL}: all'
    }
    assert same(list(lines['ours: old (S_0)'].get_ydata()), [60.0, 59.5])
    assert same(list(lines['ours: all (S_k)'].get_ydata()), [60.0, 58.0])
    assert list(lines['ours: all (S_k)'].get_xdata()) == [0, 1]
    dashed = lines[f'{PAPER_LABEL}: all']
    assert list(dashed.get_ydata()) == [73.4, 68.4]
    assert dashed.get_linestyle() == '--'
    assert [t.get_text()
            for t in fig.axes[0].get_xticklabels()] == ['M0(0-19)', 'M1(20)']

    path = str(tmp_path / 'miou.png')
    save_figure(fig, path)
    ax = fig.axes[0]
    # Marker centres: the paper's black square at step 0, ours "new" at 1.
    assert png_pixel(path, fig, ax, 0, 73.4) == (0, 0, 0)
    assert png_pixel(path, fig, ax, 1, 30.0) == rgb(NEW_COLOR)
    assert png_pixel(path, fig, ax, 0.5, 90.0) == (255, 255, 255)


def test_miou_lines_skip_undefined_series():
    run = RunSummary.from_dict(voc_joint())
    fig = miou_figure(run)  # no reference
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert labels == ['ours: old (S_0)', 'ours: all (S_k)']  # new: all None


def test_iou_bars_hold_the_summary_values(tmp_path):
    run = RunSummary.from_dict(voc_19_1())
    bars = iou_bars(run)
    assert bars.heights == [c + 50.0 for c in range(20)] + [30.0]
    assert bars.colors == [OLD_COLOR] * 20 + [NEW_COLOR]
    fig = iou_figure(run)
    patches = fig.axes[0].patches[:21]
    assert [p.get_height() for p in patches] == bars.heights

    joint = iou_bars(RunSummary.from_dict(voc_joint()))
    assert joint.undefined[5] and joint.heights[5] == 0.0  # bottle: n/a
    assert joint.heights[20] == 41.0

    # Class names that do not match seen_classes: step unknown, grey.
    s = voc_19_1()
    s['steps'][1]['seen_classes'] = list(range(20))
    assert set(iou_bars(RunSummary.from_dict(s)).colors) == {UNKNOWN_COLOR}


def test_iou_png_colours_at_bar_positions(tmp_path):
    names = ('background', 'cat', 'dog')
    s = summary(
        'custom', [[0, 1], [2]],
        'FT', [
            entry(0, [0, 1], [0, 1], 70.0, names=names),
            entry(
                1, [2], [0, 1, 2],
                50.0,
                names=names,
                iou={
                    0: 80.0,
                    1: 30.0,
                    2: 40.0
                })
        ],
        dataset='custom')
    run = RunSummary.from_dict(s)
    fig = iou_figure(run)
    path = str(tmp_path / 'iou.png')
    save_figure(fig, path)
    ax = fig.axes[0]
    for x, height, color in ((0, 80.0, OLD_COLOR), (1, 30.0, OLD_COLOR),
                             (2, 40.0, NEW_COLOR)):
        # (off the grid lines at multiples of 20)
        assert png_pixel(path, fig, ax, x, height * 0.55) == rgb(color)
        assert png_pixel(path, fig, ax, x, height - 3) == rgb(color)
        # Above the bar: background, not the bar's colour.
        above = png_pixel(path, fig, ax, x, height + 4)
        assert above != rgb(color), (x, above)


@pytest.mark.parametrize('name', ['miou_per_step.png', 'iou_per_class.png'])
def test_report_writes_the_same_plots(tmp_path, name):
    from mmseg_incremental.reporting import write_report
    s = voc_19_1()
    write_report(str(tmp_path), s)
    run = RunSummary.from_dict(s)
    ref = find_reference(PAPER_LABEL, '19-1', "L'_D")
    fig = miou_figure(run, ref) if name.startswith('miou') else \
        iou_figure(run)
    save_figure(fig, str(tmp_path / 'expected.png'))
    with Image.open(tmp_path / name) as a, \
            Image.open(tmp_path / 'expected.png') as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
