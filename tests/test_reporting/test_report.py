"""report.md and metrics.csv of one experiment, from hand-made summaries
with known numbers."""
import pytest
from test_reporting.utils import (VOC, entry, incremental, md_tables, read_csv,
                                  summary, table, voc_15_1, voc_19_1,
                                  voc_joint)

from mmseg_incremental.reporting import (MIB_LABEL, PAPER_LABEL, RunSummary,
                                         SummaryError, write_report)


def report(tmp_path, s, name='run'):
    write_report(str(tmp_path / name), s)
    text = (tmp_path / name / 'report.md').read_text()
    return text, md_tables(text)


def test_report_19_1_with_paper(tmp_path):
    text, tables = report(tmp_path, voc_19_1())
    assert 'References: paper (VOC, R101) (measured with' in text

    # Tables 1-3 shape: old classes, old, new classes, new, all, mPA, mCA.
    per_class = table(tables, 'Per-class IoU after M1(20)')
    assert list(per_class[0]) == [''] + list(
        VOC[:20]) + ['old', 'tvmonitor', 'new', 'all', 'mPA', 'mCA']
    ours, paper = per_class
    assert ours[''] == 'ours' and paper[''] == PAPER_LABEL
    assert ours['aeroplane'] == '51.0' and ours['tvmonitor'] == '30.0'
    assert (ours['old'], ours['new'], ours['all']) == ('59.5', '30.0', '58.0')
    assert (ours['mPA'], ours['mCA']) == ('91.0', '81.0')
    assert (paper['old'], paper['new'], paper['all']) == ('70.0', '35.3',
                                                          '68.4')
    assert paper['tvmonitor'] == '' and paper['mPA'] == ''  # unpublished

    # Table 4 shape (the demo's table): mIoU per step, then old/new/all.
    series = table(tables, 'mIoU after each step')
    assert list(series[0]) == [
        'method', 'source', 'M0(0-19)', 'M1(20)', 'old', 'new', 'all'
    ]
    assert list(series[0].values()) == [
        "L'_D", 'ours', '60.0', '58.0', '59.5', '30.0', '58.0'
    ]
    assert list(series[1].values()) == [
        "L'_D", PAPER_LABEL, '73.4', '68.4', '70.0', '35.3', '68.4'
    ]

    steps = table(tables, 'Every metric after each step')
    assert [(r['model'], r['source'])
            for r in steps] == [('M0(0-19)', 'ours'), ('M1(20)', 'ours'),
                                ('M1(20)', PAPER_LABEL)]
    assert steps[0]['new'] == '–' and steps[0]['hIoU'] == '–'
    assert steps[1]['old w/o bg'] == '58.5' and steps[1]['mPA'] == '91.0'
    assert steps[1]['this step'] == '30.0' and steps[0]['mCA'] == '80.0'
    # hIoU of the paper's row: 2 * 70.0 * 35.3 / 105.3 = 46.93
    assert steps[2]['hIoU'] == '46.9' and steps[2]['old w/o bg'] == ''
    assert MIB_LABEL not in text  # sequential run

    rows = read_csv(tmp_path / 'run' / 'metrics.csv')
    assert [r['step'] for r in rows] == ['0', '1']
    assert rows[0]['mIoU_new'] == '' and rows[1]['mIoU_new'] == '30.0'
    assert rows[0]['IoU.tvmonitor'] == '' and rows[1]['IoU.tvmonitor'] == \
        '30.0'
    assert rows[1]['IoU.person'] == '65.0' and rows[1]['new_classes'] == '20'
    assert rows[1]['model'] == 'M1(20)' and rows[0]['hIoU'] == ''
    for png in ('miou_per_step.png', 'iou_per_class.png'):
        assert (tmp_path / 'run' / png).is_file()  # content: test_plots


def test_report_accepts_run_summary(tmp_path):
    s = voc_19_1()
    write_report(str(tmp_path / 'a'), s)
    write_report(str(tmp_path / 'b'), RunSummary.from_dict(s))
    for name in ('report.md', 'metrics.csv'):
        assert (tmp_path / 'a' / name).read_text() == \
            (tmp_path / 'b' / name).read_text()


@pytest.mark.parametrize('method,changes,why', [
    ("L'_D",
     dict(
         inc=dict(
             incremental("L'_D"),
             distill_terms=dict(
                 output=dict(
                     type='OutputDistillTerm',
                     variant='mib',
                     pixel_mask='none',
                     loss_weight=100.0)))),
     "L'_D variant 'ilt' (here 'mib'), L'_D pixel_mask 'old' (here 'none'), "
     "λ'_D 1.0 (here 100.0)"),
    ('FT', dict(setting='overlapped', eval_protocol='unseen_as_background'),
     "setting 'sequential' (here 'overlapped'), eval_protocol 'seen_only' "
     "(here 'unseen_as_background'); " + MIB_LABEL + " needs setting "
     "'disjoint' (here 'overlapped'), eval_protocol 'mask_unseen' (here "
     "'unseen_as_background')"),
])
def test_report_without_reference_says_why(tmp_path, method, changes, why):
    inc = changes.pop('inc', None)
    text, tables = report(tmp_path, voc_19_1(method, inc=inc, **changes))
    line = [ln for ln in text.splitlines() if ln.startswith('References')]
    assert line == [
        f'References: none, no published reference for {method} on voc '
        f'19-1: {PAPER_LABEL} needs {why}.'
    ]
    for heading, rows in tables.items():
        sources = {r.get('source', r.get('')) for r in rows}
        assert not sources & {PAPER_LABEL, MIB_LABEL}, heading
    assert len(table(tables, 'Per-class IoU')) == 1
    assert len(table(tables, 'mIoU after each step')) == 1
    assert PAPER_LABEL + '": Michieli' not in text  # no footnote either


def test_report_mib_flavour(tmp_path):
    s = voc_19_1('ILT (MiB)', setting='disjoint', eval_protocol='mask_unseen')
    text, tables = report(tmp_path, s)
    steps = table(tables, 'Every metric after each step')
    assert [r['source'] for r in steps] == ['ours', 'ours', MIB_LABEL]
    # MiB's old leaves the background out: under "old w/o bg".
    assert [steps[2][k] for k in ('old', 'old w/o bg', 'new', 'all')
            ] == ['', '69.1', '16.4', '66.4']
    # No per-step numbers published: no reference row in Table 4.
    assert [r['source'] for r in table(tables, 'mIoU after each')] == ['ours']
    assert PAPER_LABEL not in text


def test_report_single_step_and_nulls(tmp_path):
    text, tables = report(tmp_path, voc_joint())
    assert 'References: paper (VOC, R101)' in text
    (ours, ) = table(tables, 'Per-class IoU after M0(0-20)')
    assert 'new' not in ours and ours['tvmonitor'] == '41.0'
    assert ours['bottle'] == '–' and ours['old'] == '12.0'
    (row, ) = table(tables, 'Every metric after each step')
    assert row['new'] == '–' and row['hIoU'] == '–' and row['all'] == '12.0'

    # Scored as 19-1: old = mean(0..19 without bottle) = 185 / 19 = 9.74,
    # new = 41, hIoU = 2 * 9.74 * 41 / 50.74 = 15.74; all = 226 / 20 = 11.3.
    # As 15-5: old = mean(0..15 w/o 5) = 115 / 15 = 7.67, new =
    # mean(16..19, 41) = 111 / 5 = 22.2.
    split = table(tables, 'The joint model split')
    assert [(r['split'], r['source'])
            for r in split] == [('19-1', 'ours'), ('19-1', PAPER_LABEL),
                                ('15-5 / 15-1', 'ours'),
                                ('15-5 / 15-1', PAPER_LABEL)]
    assert [split[0][k] for k in ('old', 'new', 'all', 'hIoU')
            ] == ['9.7', '41.0', '11.3', '15.7']
    assert [split[1][k]
            for k in ('old', 'new', 'all')] == ['73.7', '70.5', '73.6']
    assert [split[3][k]
            for k in ('old', 'new', 'all')] == ['75.1', '68.5', '73.6']
    assert [split[2][k] for k in ('old', 'new')] == ['7.7', '22.2']

    (row, ) = read_csv(tmp_path / 'run' / 'metrics.csv')
    assert row['IoU.bottle'] == '' and row['hIoU'] == ''
    assert row['mIoU'] == '12.0'


def test_report_partial_15_1_and_other_dataset(tmp_path):
    s = voc_15_1('FT', last_step=1)
    text, tables = report(tmp_path, s, 'voc')
    # The paper's mIoU per step (Table 4), but no last-step paper numbers:
    # the run stopped at step 1 of 5.
    ours, paper = table(tables, 'mIoU after each step')
    assert [ours[k] for k in ('M0(0-15)', 'M1(16)', 'M2(17)', 'all')
            ] == ['70.0', '60.0', '', '60.0']
    assert [paper[k] for k in ('M0(0-15)', 'M1(16)', 'M5(20)', 'all')
            ] == ['75.5', '71.2', '44.2', '']
    assert len(table(tables, 'Every metric after each step')) == 2
    assert len(table(tables, 'Per-class IoU')) == 1
    header = {r['']: r['value'] for r in table(tables, 'voc 15-1')}
    assert header['steps done'] == '2 of 6' and header['method'] == 'FT'
    assert 'shown once this run reaches it' in text

    ade = dict(s, dataset='ade', task='custom')
    text, _ = report(tmp_path, ade, 'ade')
    assert PAPER_LABEL not in text
    assert 'References: none, no published reference for FT on ade ' \
        'custom.' in text


def test_report_bad_summary(tmp_path):
    with pytest.raises(SummaryError, match='non-empty "steps" list'):
        write_report(str(tmp_path), dict(task='19-1', steps=[]))
    with pytest.raises(ValueError, match=r'steps\[0\] needs "step"'):
        write_report(str(tmp_path), dict(steps=[dict(metrics={})]))
    assert not (tmp_path / 'report.md').exists()


def test_report_many_classes_as_rows_and_no_iou(tmp_path):
    # ADE 100-50-like: more classes than columns fit, so one row per class.
    names = [f'c{i}' for i in range(40)]
    s = summary(
        'custom', [list(range(30)), list(range(30, 40))],
        'FT', [
            entry(0, range(30), range(30), 20.0, names=names),
            entry(
                1,
                range(30, 40),
                range(40),
                15.0,
                names=names,
                iou={c: float(c)
                     for c in range(40)},
                mIoU_old=18.0,
                mIoU_new=6.0)
        ],
        dataset='ade')
    _, tables = report(tmp_path, s, 'ade')
    rows = table(tables, 'Per-class')
    assert len(rows) == 40
    assert rows[35] == {
        'class': 'c35',
        'id': '35',
        'learnt at step': '1',
        'IoU': '35.0'
    }
    del s['steps'][1]['metrics']['IoU']
    text, _ = report(tmp_path, s, 'no_iou')
    assert 'No per-class IoU recorded for this step.' in text
    assert (tmp_path / 'no_iou' / 'iou_per_class.png').is_file()
