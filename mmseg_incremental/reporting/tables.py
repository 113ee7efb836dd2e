"""Markdown (prettytable) and CSV cells of the reports.

Numbers print with one decimal like the paper's tables; undefined values
(None, NaN) print as ``–`` in Markdown and as an empty cell in CSV.
"""
import csv
import math
from typing import Optional, Sequence

from prettytable import PrettyTable

try:  # prettytable >= 3.12
    from prettytable import TableStyle
    MARKDOWN = TableStyle.MARKDOWN
except ImportError:  # pragma: no cover
    from prettytable import MARKDOWN

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
    """A Markdown table whose columns line up as plain text.

    Args:
        header (Sequence[str]): Column titles (unique).
        rows (Sequence[Sequence[str]]): Cells, already formatted.
        numeric_from (int): Columns from this index on are right-aligned.

    Returns:
        str: The table, one line per row, no trailing newline.
    """
    if len(set(header)) != len(header):
        raise ValueError(f'Column titles must be unique: {list(header)}.')
    table = PrettyTable(list(header))
    table.set_style(MARKDOWN)
    for i, title in enumerate(header):
        table.align[title] = 'r' if i >= numeric_from else 'l'
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f'Row {list(r)} has {len(r)} cells for '
                             f'{len(header)} columns {list(header)}.')
        table.add_row([str(c) for c in r])
    return table.get_string()


def write_csv(path: str, header: Sequence[str],
              rows: Sequence[Sequence]) -> None:
    """Write ``rows`` under ``header`` (cells through :func:`csv_cell`)."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in rows:
            writer.writerow([csv_cell(c) for c in r])


def join_ids(ids: Sequence[int]) -> str:
    """Class ids as ``'16 17 18'`` for a CSV cell."""
    return ' '.join(map(str, ids))
