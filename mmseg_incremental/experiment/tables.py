"""Markdown and CSV cells for the experiment reports.

Numbers print with one decimal like the paper's tables; undefined values
(None, NaN) print as ``–`` in Markdown and as an empty cell in CSV.
"""
import csv
import math
from typing import List, Optional, Sequence

MISSING = '–'


def fmt(value: Optional[float], digits: int = 1) -> str:
    """A percentage for a Markdown cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f'{float(value):.{digits}f}'


def csv_cell(value) -> str:
    """A CSV cell: numbers unrounded, None / NaN empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    return str(value)


def md_table(header: Sequence[str],
             rows: Sequence[Sequence[str]],
             numeric_from: int = 1) -> str:
    """A Markdown table padded so that its columns line up as plain text.

    Args:
        header (Sequence[str]): Column titles.
        rows (Sequence[Sequence[str]]): Cells, already formatted.
        numeric_from (int): Columns from this index on are right-aligned.

    Returns:
        str: The table, one line per row, no trailing newline.
    """
    rows = [[str(c) for c in r] for r in rows]
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f'Row {r} has {len(r)} cells for '
                             f'{len(header)} columns {list(header)}.')
    widths = [
        max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)
    ]
    widths = [max(w, 3) for w in widths]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if i >= numeric_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return '| ' + ' | '.join(padded) + ' |'

    rule = [('-' * (w - 1) + ':') if i >= numeric_from else '-' * w
            for i, w in enumerate(widths)]
    return '\n'.join([line(header), '| ' + ' | '.join(rule) + ' |'] +
                     [line(r) for r in rows])


def write_csv(path: str, header: Sequence[str],
              rows: Sequence[Sequence]) -> None:
    """Write ``rows`` under ``header`` (cells through :func:`csv_cell`)."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in rows:
            writer.writerow([csv_cell(c) for c in r])


def join_ids(ids: Optional[List[int]]) -> str:
    """Class ids as ``'16 17 18'`` for a CSV cell."""
    return ' '.join(map(str, ids or []))
