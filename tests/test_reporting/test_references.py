"""Published rows and when they apply: only to runs measured the way the
paper (or MiB) measured them."""
import copy
import os.path as osp
import re

import pytest
from mmengine.config import Config
from test_reporting.utils import (ROOT, incremental, read_csv, voc_15_1,
                                  voc_19_1, write_run)

from mmseg_incremental.reporting import (MIB_LABEL, PAPER_LABEL, REFERENCES,
                                         RunSummary, compare_runs,
                                         match_references, write_report)
from mmseg_incremental.reporting.recipe import MIB_RECIPE, run_recipe
from mmseg_incremental.reporting.references import (MIB_CITATION,
                                                    PAPER_CITATION,
                                                    find_reference)


def run(s):
    return RunSummary.from_dict(s)


def test_published_numbers():
    paper = find_reference(PAPER_LABEL, '19-1', "L'_D")
    assert tuple(paper.result) == (70.0, 35.3, 68.4)
    assert paper.steps == (73.4, 68.4)
    assert paper.hiou == pytest.approx(2 * 70.0 * 35.3 / 105.3)
    assert tuple(find_reference(PAPER_LABEL, '15-5s',
                                "EF+L'_D").result) == (70.5, 44.2, 64.3)
    assert tuple(find_reference(PAPER_LABEL, '15-5',
                                'M0').result) == (75.5, None, 75.5)
    assert find_reference(PAPER_LABEL, '15-5', 'EF') is None  # Table 2
    assert find_reference(PAPER_LABEL, '15-1',
                          'FT').steps == (75.5, 71.2, 53.8, 57.7, 39.3, 44.2)
    # 15-1 methods outside Table 4: only M0 and the last step are known.
    assert find_reference(PAPER_LABEL, '15-1',
                          "L''_D").steps == (75.5, 72.2, 60.0, 65.5, 52.1,
                                             61.0)
    assert find_reference(PAPER_LABEL, '19-1', 'M0').steps == (73.4, )
    assert find_reference(PAPER_LABEL, '19-1', 'joint').steps is None
    mib = find_reference(MIB_LABEL, '19-1', 'ILT (MiB)')
    assert tuple(mib.result) == (69.1, 16.4, 66.4)
    assert mib.old_without_background and mib.steps is None
    assert tuple(find_reference(MIB_LABEL, '15-1',
                                'ILT (MiB)').result) == (3.7, 5.7, 4.2)


# The record of what was checked, and where (docs/results.md, "Published
# numbers and their sources"): every published row, its old / new / all,
# the table and the row of the source they were read from. The paper:
# Michieli & Zanuttigh, ICCVW 2019, arXiv 1907.13372 (Tables 1-3, 19-1 /
# 15-5 / 15-1). MiB: Cermelli et al., CVPR 2020, arXiv 2002.00718, Table 1,
# "Disjoint" columns, as voc-tab.png of github.com/fcdl94/MiB prints it.
CHECKED = {
    (PAPER_LABEL, '19-1', 'FT'): ((67.3, 20.1, 65.1), 1, 'Fine-tuning'),
    (PAPER_LABEL, '19-1', "L'_D"): ((70.0, 35.3, 68.4), 1, "L'D"),
    (PAPER_LABEL, '19-1', 'EF'): ((71.9, 43.3, 70.5), 1, 'EF'),
    (PAPER_LABEL, '19-1', "EF+L'_D"): ((72.5, 51.4, 71.5), 1, "EF, L'D"),
    (PAPER_LABEL, '19-1', "L''_D"): ((72.6, 50.6, 71.6), 1, "L''D"),
    (PAPER_LABEL, '19-1', "L'_D+L''_D"): ((72.8, 49.9, 71.7), 1, "L'D, L''D"),
    (PAPER_LABEL, '19-1', 'M0'): ((73.4, None, 73.4), 1, 'M0(0-19)'),
    (PAPER_LABEL, '19-1', 'joint'): ((73.7, 70.5, 73.6), 1, 'M0(0-20)'),
    (PAPER_LABEL, '15-5', 'FT'): ((60.6, 38.7, 55.4), 2, 'Fine-tuning'),
    (PAPER_LABEL, '15-5', "L'_D"): ((71.0, 49.0, 65.7), 2, "L'D"),
    (PAPER_LABEL, '15-5', "EF+L'_D"): ((70.0, 45.8, 64.2), 2, "EF, L'D"),
    (PAPER_LABEL, '15-5', "L''_D"): ((65.6, 43.9, 60.5), 2, "L''D"),
    (PAPER_LABEL, '15-5', 'M0'): ((75.5, None, 75.5), 2, 'M0(0-15)'),
    (PAPER_LABEL, '15-5', 'joint'): ((75.1, 68.5, 73.6), 2, 'M0(0-20)'),
    (PAPER_LABEL, '15-1', 'FT'): ((47.8, 33.0, 44.2), 3, 'Fine-tuning'),
    (PAPER_LABEL, '15-1', "L'_D"): ((57.4, 34.9, 52.0), 3, "L'D"),
    (PAPER_LABEL, '15-1', "EF+L'_D"): ((70.5, 44.2, 64.3), 3, "EF, L'D"),
    (PAPER_LABEL, '15-1', "L''_D"): ((65.9, 45.4, 61.0), 3, "L''D"),
    (PAPER_LABEL, '15-1', 'M0'): ((75.5, None, 75.5), 3, 'M0(0-15)'),
    (PAPER_LABEL, '15-1', 'joint'): ((75.1, 68.5, 73.6), 3, 'M0(0-20)'),
    (MIB_LABEL, '19-1', 'FT'): ((5.8, 12.3, 6.2), 1, 'FT'),
    (MIB_LABEL, '19-1', 'ILT (MiB)'): ((69.1, 16.4, 66.4), 1, 'ILT [24]'),
    (MIB_LABEL, '15-5', 'FT'): ((1.1, 33.6, 9.2), 1, 'FT'),
    (MIB_LABEL, '15-5', 'ILT (MiB)'): ((63.2, 39.5, 57.3), 1, 'ILT [24]'),
    (MIB_LABEL, '15-1', 'FT'): ((0.2, 1.8, 0.6), 1, 'FT'),
    (MIB_LABEL, '15-1', 'ILT (MiB)'): ((3.7, 5.7, 4.2), 1, 'ILT [24]'),
}
#: The paper's Table 4 (15-1): mIoU after M1(16) .. M5(20).
CHECKED_TABLE_4 = {
    'FT': (71.2, 53.8, 57.7, 39.3, 44.2),
    "L'_D": (72.4, 68.1, 63.3, 54.1, 52.0),
    "EF+L'_D": (72.5, 68.4, 66.5, 61.3, 64.3),
    "L''_D": (72.2, 60.0, 65.5, 52.1, 61.0),
}


def test_every_published_row_was_checked_and_cites_its_table():
    """No row without a source: each names the paper, a table and a row,
    and holds the numbers recorded in CHECKED."""
    assert {(r.source, r.task, r.method) for r in REFERENCES} == set(CHECKED)
    for ref in REFERENCES:
        values, table, row = CHECKED[ref.source, ref.task, ref.method]
        assert tuple(ref.result) == values, ref
        assert ref.citation.strip(), ref
        assert re.search(r"Table \d+, row '[^']+'|README", ref.citation)
        assert f"Table {table}, row '{row}'" in ref.citation, ref.citation
        paper = PAPER_CITATION if ref.source == PAPER_LABEL else MIB_CITATION
        assert ref.citation.startswith(paper)
    for method, steps in CHECKED_TABLE_4.items():
        ref = find_reference(PAPER_LABEL, '15-1', method)
        assert ref.steps == (75.5, ) + steps
        assert f"Table 4, column '{CHECKED[PAPER_LABEL, '15-1', method][2]}'" \
            in ref.citation


def test_citations_say_where_the_numbers_were_read():
    assert find_reference(PAPER_LABEL, '15-5', "L''_D").citation == (
        'Michieli & Zanuttigh, ICCVW 2019 (arXiv 1907.13372), Table 2, '
        "row 'L''D': mIoU 0-15 / 16-20 / all")
    assert find_reference(MIB_LABEL, '15-5', 'ILT (MiB)').citation == (
        'Cermelli et al., CVPR 2020 (arXiv 2002.00718), Table 1, row '
        "'ILT [24]', 15-5 Disjoint: mIoU 1-15 / 16-20 / all (voc-tab.png "
        'in github.com/fcdl94/MiB)')
    assert 'Table 4' not in find_reference(PAPER_LABEL, '15-5', 'FT').citation


def test_reports_print_the_citation_of_each_published_row(tmp_path):
    write_report(str(tmp_path / 'run'), voc_19_1())
    text = (tmp_path / 'run' / 'report.md').read_text()
    ld = find_reference(PAPER_LABEL, '19-1', "L'_D")
    assert f"  - {PAPER_LABEL}, 19-1 L'_D: {ld.citation}." in text

    runs = tmp_path / 'runs'
    dirs = [
        write_run(runs, 'ft', voc_19_1('FT')),
        write_run(
            runs, 'ilt',
            voc_19_1(
                'ILT (MiB)', setting='disjoint', eval_protocol='mask_unseen'))
    ]
    text = compare_runs(dirs, str(tmp_path / 'out'))
    mib = find_reference(MIB_LABEL, '19-1', 'ILT (MiB)')
    assert f'- {MIB_LABEL}, voc 19-1 ILT (MiB): {mib.citation}.' in text
    ft = find_reference(PAPER_LABEL, '19-1', 'FT')
    assert f'- {PAPER_LABEL}, voc 19-1 FT: {ft.citation}.' in text
    rows = read_csv(tmp_path / 'out' / 'comparison.csv')
    cited = {(r['method'], r['source']): r['citation'] for r in rows}
    assert cited['ILT (MiB)', MIB_LABEL] == mib.citation
    assert cited['FT', PAPER_LABEL] == ft.citation
    assert cited['FT', 'ours'] == ''


# docs/design.md §4 (the paper's Tables 1-3; MiB's Table 1, disjoint).
PAPER = {
    ('19-1', 'ft'): (67.3, 20.1, 65.1),
    ('19-1', 'ld'): (70.0, 35.3, 68.4),
    ('19-1', 'ef'): (71.9, 43.3, 70.5),
    ('19-1', 'ef-ld'): (72.5, 51.4, 71.5),
    ('19-1', 'fd'): (72.6, 50.6, 71.6),
    ('19-1', 'ld-fd'): (72.8, 49.9, 71.7),
    ('15-5', 'ft'): (60.6, 38.7, 55.4),
    ('15-5', 'ld'): (71.0, 49.0, 65.7),
    ('15-5', 'ef-ld'): (70.0, 45.8, 64.2),
    ('15-5', 'fd'): (65.6, 43.9, 60.5),
    ('15-1', 'ft'): (47.8, 33.0, 44.2),
    ('15-1', 'ld'): (57.4, 34.9, 52.0),
    ('15-1', 'ef-ld'): (70.5, 44.2, 64.3),
    ('15-1', 'fd'): (65.9, 45.4, 61.0),
}
MIB = {
    ('19-1', 'ilt'): (69.1, 16.4, 66.4),
    ('15-5', 'ilt'): (63.2, 39.5, 57.3),
    ('15-1', 'ilt'): (3.7, 5.7, 4.2),
    ('19-1', 'ft'): (5.8, 12.3, 6.2),
    ('15-5', 'ft'): (1.1, 33.6, 9.2),
    ('15-1', 'ft'): (0.2, 1.8, 0.6),
}


def summary_of(config):
    """A finished summary of a shipped config, as write_summary writes it."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'il', config))
    s = voc_19_1(cfg.method)
    s.update(
        task=cfg.task,
        setting=cfg.get('setting', 'sequential'),
        eval_protocol=cfg.get('eval_protocol', 'seen_only'),
        incremental=cfg.incremental.to_dict(),
        recipe=run_recipe(cfg))
    return s


@pytest.mark.parametrize('task,name', sorted(PAPER))
def test_paper_configs_get_their_paper_row(task, name):
    match = match_references(run(summary_of(f'voc_{task}_{name}.py')))
    (ref, ) = match.references
    assert match.why_none == ''
    assert ref.source == PAPER_LABEL
    assert tuple(ref.result) == PAPER[task, name]


@pytest.mark.parametrize('task,name', sorted(MIB))
def test_mib_configs_get_mib_row(task, name):
    s = summary_of(f'voc_{task}_mib-disjoint_{name}.py')
    # These leaves run ILT's recipe; MiB measured its rows on its own: no
    # row, one line says what differs.
    match = match_references(run(s))
    assert match.references == ()
    assert (f'{MIB_LABEL} needs network DeepLab-v3 R101 (here DeepLab-v2 '
            'R101), output stride 16 (here 8), crop 512x512 (here 321x321), '
            'total batch 24 (here 4), schedule epochs of the image lists '
            '(here iterations per class), evaluation 512x512 centre crop '
            '(here whole images)') in match.why_none
    # The same method and protocol on MiB's recipe: MiB's row.
    s['recipe'] = dict(MIB_RECIPE)
    (ref, ) = match_references(run(s)).references
    assert ref.source == MIB_LABEL
    assert tuple(ref.result) == MIB[task, name]
    # MiB's overlapped setting has other numbers: none printed.
    s = summary_of(f'voc_{task}_mib-overlapped_{name}.py')
    assert match_references(run(s)).references == ()


def _ld(**changes):
    inc = incremental("L'_D")
    inc['distill_terms']['output'].update(changes)
    return inc


def _ldd(**changes):
    inc = incremental("L'_D+L''_D")
    inc['distill_terms']['feature'].update(changes)
    return inc


@pytest.mark.parametrize(
    'method,changes,reason',
    [
        # MiB's L'_D under the paper's setting
        ("L'_D", dict(inc=_ld(variant='mib')),
         "L'_D variant 'ilt' (here 'mib')"),
        ("L'_D", dict(inc=_ld(loss_weight=2.0)), "λ'_D 1.0 (here 2.0)"),
        ("L'_D", dict(inc=_ld(pixel_mask='none')),
         "L'_D pixel_mask 'old' (here 'none')"),
        ("L'_D", dict(inc=_ld(temperature=2.0)),
         "L'_D temperature 1.0 (here 2.0)"),
        ("L'_D", dict(setting='disjoint'),
         "setting 'sequential' (here 'disjoint')"),
        ("L'_D", dict(eval_protocol='mask_unseen'),
         "eval_protocol 'seen_only' (here 'mask_unseen')"),
        ("L'_D", dict(inc=dict(_ld(), new_class_init='background')),
         "new_class_init 'default' (here 'background')"),
        ("L'_D", dict(inc=dict(_ld(), freeze_encoder=True)),
         'freeze_encoder False (here True)'),
        ('FT', dict(inc=_ld()), "L'_D off (here on)"),
        ("L'_D+L''_D", dict(inc=_ldd(loss_weight=100.0)), "λ''_D 50.0 (here "
         '100.0)'),
        # the paper's ILT under MiB's setting: neither source applies
        ("L'_D+L''_D", dict(setting='disjoint', eval_protocol='mask_unseen'),
         "setting 'sequential' (here 'disjoint')"),
    ])
def test_changed_config_gets_no_row(method, changes, reason):
    inc = changes.pop('inc', None)
    s = voc_19_1(method, inc=inc, **changes)
    match = match_references(run(s))
    assert match.references == ()
    assert match.why_none.startswith(
        f'no published reference for {method} on voc 19-1: {PAPER_LABEL} '
        'needs ')
    assert reason in match.why_none


def test_mib_flavour_mismatches():
    # The MiB re-run of ILT under the paper's setting: no row.
    s = voc_19_1('ILT (MiB)')
    match = match_references(run(s))
    assert match.references == ()
    assert f"{MIB_LABEL} needs setting 'disjoint' (here 'sequential')" in \
        match.why_none
    # Disjoint FT: MiB's row, not the paper's (sequential) one.
    s = voc_19_1('FT', setting='disjoint', eval_protocol='mask_unseen')
    (ref, ) = match_references(run(s)).references
    assert ref.source == MIB_LABEL and tuple(ref.result) == (5.8, 12.3, 6.2)
    # Disjoint + MiB's variant but λ = 10: nothing.
    inc = incremental('ILT (MiB)')
    inc['distill_terms']['output']['loss_weight'] = 10.0
    s = voc_19_1(
        'ILT (MiB)', setting='disjoint', eval_protocol='mask_unseen', inc=inc)
    match = match_references(run(s))
    assert match.references == ()
    assert "λ'_D 100.0 (here 10.0)" in match.why_none


def test_other_tasks_and_older_summaries():
    s = voc_19_1()
    match = match_references(run(dict(s, dataset='ade')))
    assert match.references == ()
    assert match.why_none == "no published reference for L'_D on ade 19-1."
    s15 = voc_15_1("L'_D")
    s15['task'] = '15-5s'  # the alias of 15-1
    (ref, ) = match_references(run(s15)).references
    assert ref.task == '15-1' and ref.result.all == 52.0
    old = copy.deepcopy(s)
    del old['incremental']  # written before the config was recorded
    match = match_references(run(old))
    assert match.references == ()
    assert "has no 'incremental'" in match.why_none
    # M0 and joint have no incremental step: only setting and protocol.
    m0 = run(dict(s, inc={}))
    (ref, ) = match_references(m0, method='M0').references
    assert ref.result.all == 73.4
    a_loss_weight_of_zero_is_off = _ld(loss_weight=0.0)
    s = voc_19_1('FT', inc=a_loss_weight_of_zero_is_off)
    assert match_references(run(s)).references[0].method == 'FT'


@pytest.mark.parametrize('method', ["L'_D", "L'_D+L''_D", "EF+L'_D"])
def test_summaries_with_the_old_keys_still_match(method):
    """A summary.json written before methods became terms records
    ``distill_output``/``distill_feature``: it gets the same row."""
    new = match_references(run(voc_19_1(method))).references
    old_inc = {
        k: v
        for k, v in incremental(method).items() if k != 'distill_terms'
    }
    for name, term in incremental(method).get('distill_terms', {}).items():
        loss = dict(term)
        kind = loss.pop('type')
        if kind == 'OutputDistillTerm':
            old_inc['distill_output'] = dict(type='OutputDistillLoss', **loss)
        else:
            old_inc['distill_feature'] = dict(
                type='FeatureDistillLoss', **loss)
    old = match_references(run(voc_19_1(method, inc=old_inc))).references
    assert len(new) == 1 and old == new


@pytest.mark.parametrize('config,recipe', [
    ('voc_19-1_ld.py', 'ilt'),
    ('voc_15-1_ef-ld.py', 'ilt'),
    ('voc_15-1_mib-disjoint_ilt.py', 'ilt'),
    ('mib/voc_15-1_disjoint.py', 'mib'),
    ('mib/voc_19-1_overlapped.py', 'mib'),
    ('plop/voc_15-5_overlapped.py', 'mib'),
])
def test_shipped_configs_carry_their_papers_recipe(config, recipe):
    """The recipe read off each shipped config equals the one its paper's
    rows carry (ILT: DeepLab-v2 OS8 321 / 4; MiB, PLOP: DeepLab-v3 OS16
    512 / 24, epochs, 512 crop)."""
    from mmseg_incremental.reporting.recipe import ILT_RECIPE
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'il', config))
    assert run_recipe(cfg) == (ILT_RECIPE if recipe == 'ilt' else MIB_RECIPE)
