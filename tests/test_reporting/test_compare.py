"""compare_runs: several runs in one table, methods as rows like the paper,
published rows only beside runs measured the same way."""
import os.path as osp
import re
import runpy
import sys

import pytest
from test_reporting.utils import (ROOT, entry, incremental, md_tables,
                                  read_csv, summary, table, voc_15_1, voc_19_1,
                                  voc_joint, write_run)

from mmseg_incremental.reporting import MIB_LABEL, PAPER_LABEL, compare_runs


def run_cli(*args):
    argv = sys.argv
    sys.argv = ['compare_runs.py', *args]
    try:
        runpy.run_path(
            osp.join(ROOT, 'tools', 'compare_runs.py'), run_name='__main__')
    finally:
        sys.argv = argv


def test_compare_rows_sorted_aligned(tmp_path, capsys):
    runs = tmp_path / 'runs'
    dirs = [
        write_run(runs, 'ef_ld', voc_19_1("EF+L'_D", 50.0, 50.0)),
        write_run(runs, 'ft', voc_19_1('FT', 20.0, 20.0)),
        write_run(runs, 'joint', voc_joint()),
        write_run(runs, 'ld', voc_19_1("L'_D", 35.0, 35.0)),
    ]
    out = tmp_path / 'cmp'
    run_cli(*dirs, '--out', str(out))
    printed = capsys.readouterr().out
    text = (out / 'comparison.md').read_text()
    assert printed.strip() == text.strip()
    for line_block in text.split('\n\n'):
        lines = [ln for ln in line_block.splitlines() if ln.startswith('|')]
        assert len({len(ln) for ln in lines}) <= 1, line_block  # aligned

    tables = md_tables(text)
    steps = table(tables, 'voc 19-1: mIoU after each step')
    assert list(steps[0]) == [
        'method', 'source', 'M0(0-19)', 'M1(20)', 'old', 'new', 'all'
    ]
    assert [(r['method'], r['source'])
            for r in steps] == [('FT', 'ours (ft)'), ('FT', PAPER_LABEL),
                                ("L'_D", 'ours (ld)'), ("L'_D", PAPER_LABEL),
                                ("EF+L'_D", 'ours (ef_ld)'),
                                ("EF+L'_D", PAPER_LABEL)]
    assert list(
        steps[5].values())[2:] == ['73.4', '71.5', '72.5', '51.4', '71.5']
    assert list(
        steps[2].values())[2:] == ['60.0', '58.0', '59.5', '35.0', '58.0']

    last = table(tables, 'voc 19-1: every metric after the last step')
    assert [(r['method'], r['source'])
            for r in last] == [('FT', 'ours (ft)'), ('FT', PAPER_LABEL),
                               ("L'_D", 'ours (ld)'), ("L'_D", PAPER_LABEL),
                               ("EF+L'_D", 'ours (ef_ld)'),
                               ("EF+L'_D", PAPER_LABEL),
                               ('M0', 'ours (ef_ld, ft, ld)'),
                               ('M0', PAPER_LABEL), ('joint', 'ours (joint)'),
                               ('joint', PAPER_LABEL)]
    assert [last[3][k]
            for k in ('old', 'new', 'all')] == ['70.0', '35.3', '68.4']
    assert (last[3]['setting'], last[3]['eval']) == ('sequential', 'seen_only')
    assert [last[0][k] for k in ('old', 'new', 'all', 'steps')
            ] == ['59.5', '20.0', '58.0', '2/2']
    assert (last[6]['all'], last[6]['new'], last[6]['steps']) == ('60.0', '–',
                                                                  '1/2')
    assert [last[7][k] for k in ('old', 'new', 'all')] == ['73.4', '–', '73.4']
    # The joint run scored with the 19-1 split (see test_report).
    assert [last[8][k]
            for k in ('old', 'new', 'hIoU')] == ['9.7', '41.0', '15.7']
    assert [last[9][k]
            for k in ('old', 'new', 'all')] == ['73.7', '70.5', '73.6']
    assert 'span several tasks' not in text
    assert 'no published reference' not in text

    rows = read_csv(out / 'comparison.csv')
    assert len(rows) == 10
    assert rows[2]['method'] == "L'_D" and rows[2]['new'] == '35.0'
    assert rows[2]['run'] == 'ld' and rows[2]['source'] == 'ours'
    assert rows[1]['hIoU'].startswith('30.95')  # 2*67.3*20.1/87.4
    per_step = read_csv(out / 'comparison_steps.csv')
    assert [(r['run'], r['step'], r['mIoU'])
            for r in per_step[:4]] == [('ft', '0', '60.0'),
                                       ('ft', '1', '58.0'), ('', '0', '73.4'),
                                       ('', '1', '65.1')]


def test_compare_15_1_demo_table(tmp_path):
    # The table `make demo` prints (README, "The demo").
    runs = tmp_path / 'runs'
    dirs = [
        write_run(runs, '15-1_ft', voc_15_1('FT')),
        write_run(runs, '15-1_ld', voc_15_1("L'_D"))
    ]
    text = compare_runs(dirs)
    header = [ln for ln in text.splitlines() if ln.startswith('| method')][0]
    assert re.fullmatch(
        r'\| method +\| source +\| M0\(0-15\) \| M1\(16\) \| M2\(17\) \| '
        r'M3\(18\) \| M4\(19\) \| M5\(20\) \| +old \| +new \| +all \|', header)
    rows = table(md_tables(text), 'voc 15-1: mIoU after each step')
    assert [list(r.values()) for r in rows] == [
        [
            'FT', 'ours (15-1_ft)', '70.0', '60.0', '50.0', '40.0', '30.0',
            '20.0', '21.0', '25.0', '20.0'
        ],
        [
            'FT', PAPER_LABEL, '75.5', '71.2', '53.8', '57.7', '39.3', '44.2',
            '47.8', '33.0', '44.2'
        ],
        [
            "L'_D", 'ours (15-1_ld)', '70.0', '60.0', '50.0', '40.0', '30.0',
            '20.0', '21.0', '25.0', '20.0'
        ],
        [
            "L'_D", PAPER_LABEL, '75.5', '72.4', '68.1', '63.3', '54.1',
            '52.0', '57.4', '34.9', '52.0'
        ],
    ]


def test_compare_mixed_tasks_and_mib(tmp_path):
    runs = tmp_path / 'runs'
    mib = voc_19_1(
        'ILT (MiB)', setting='disjoint', eval_protocol='mask_unseen')
    s15 = summary('15-5', [
        list(range(16)), list(range(16, 21))
    ], 'FT', [
        entry(0, range(16), range(16), 70.0, mIoU_old=70.0),
        entry(1, range(16, 21), range(21), 40.0, mIoU_old=45.0, mIoU_new=25.0)
    ])
    text = compare_runs(
        [write_run(runs, 'mib', mib),
         write_run(runs, 'ft15', s15)])
    assert 'span several tasks: voc 19-1, voc 15-5' in text
    tables = md_tables(text)
    rows = table(tables, 'voc 19-1: every metric after the last step')
    # MiB's row beside the MiB-flavour run; no paper row: the paper's M0
    # was measured under sequential / seen_only.
    assert [(r['method'], r['source'])
            for r in rows] == [('ILT (MiB)', 'ours (mib)'),
                               ('ILT (MiB)', MIB_LABEL), ('M0', 'ours (mib)')]
    assert [rows[1][k] for k in ('old', 'old w/o bg', 'new', 'all', 'hIoU')
            ] == ['', '69.1', '16.4', '66.4', '']
    assert (rows[1]['setting'], rows[1]['eval']) == ('disjoint', 'mask_unseen')
    rows = table(tables, 'voc 15-5: every metric after the last step')
    assert [rows[1][k]
            for k in ('old', 'new', 'all')] == ['60.6', '38.7', '55.4']
    assert [r['source'] for r in rows
            ] == ['ours (ft15)', PAPER_LABEL, 'ours (ft15)', PAPER_LABEL]
    assert PAPER_LABEL + '": Michieli' in text and MIB_LABEL + '": ' in text


def test_compare_reference_only_beside_matching_runs(tmp_path):
    runs = tmp_path / 'runs'
    inc = incremental("L'_D")
    inc['distill_terms']['output']['loss_weight'] = 2.0
    dirs = [
        write_run(runs, 'ld', voc_19_1("L'_D")),
        write_run(runs, 'ld_x2', voc_19_1("L'_D", inc=inc)),
    ]
    text = compare_runs(dirs)
    rows = table(md_tables(text), 'voc 19-1: every metric after the last')
    assert [(r['method'], r['source'])
            for r in rows][:3] == [("L'_D", 'ours (ld)'),
                                   ("L'_D", 'ours (ld_x2)'),
                                   ("L'_D", PAPER_LABEL)]
    assert f"- ld_x2 (L'_D): no published reference for L'_D on voc 19-1: " \
        f"{PAPER_LABEL} needs λ'_D 1.0 (here 2.0)." in text.splitlines()
    # Only the changed run: no paper row at all.
    text = compare_runs(dirs[1:])
    tables = md_tables(text)
    for heading in ('voc 19-1: every metric', 'voc 19-1: mIoU after each'):
        rows = table(tables, heading)
        assert PAPER_LABEL not in [
            r['source'] for r in rows if r['method'] != 'M0'
        ], heading


def test_compare_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='summary.json'):
        compare_runs([str(tmp_path)])
    with pytest.raises(ValueError, match='--out DIR'):
        compare_runs([str(tmp_path)], images=2)
    with pytest.raises(ValueError, match='at least one'):
        compare_runs([])
