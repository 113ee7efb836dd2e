"""A real (tiny) experiment reported through the on_summary callback: the
summary it writes parses, records the method's config and gets the paper's
reference rows, which a changed config loses."""
import os.path as osp

from mmengine.config import Config
from test_reporting.utils import ROOT, incremental, md_tables, table

from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.reporting import PAPER_LABEL, RunSummary, write_report
from mmseg_incremental.reporting.recipe import ILT_RECIPE
from test_experiment.utils import TINY


def test_real_run_reports_after_each_step(embedded_voc, step0_store, tmp_path):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'embedded', 'bench_15-1_ld.py'))
    cfg.merge_from_dict(TINY)
    cfg.data_root = embedded_voc
    cfg.step0_store = step0_store
    reported = []

    def on_summary(work_dir, summary):
        write_report(work_dir, summary)
        reported.append((summary['steps'][-1]['step'],
                         (tmp_path / 'ld' / 'report.md').read_text()))

    ld = str(tmp_path / 'ld')
    IncrementalExperiment(cfg, ld, on_summary=on_summary).run()
    assert [step for step, _ in reported] == [0, 1]
    run = RunSummary.load(ld)
    assert run.method == "L'_D" and run.incremental == incremental("L'_D")
    assert [s.step for s in run.steps] == [0, 1]

    # The tiny recipe is not the paper's: no paper row, one line why.
    assert run.recipe == dict(
        network='DeepLab-v2 R18',
        output_stride=8,
        crop='32x32',
        total_batch=4,
        schedule='iterations per class',
        evaluation='whole images')
    assert (f"References: none, no published reference for L'_D on voc "
            f'15-1: {PAPER_LABEL} needs network DeepLab-v2 R101 (here '
            'DeepLab-v2 R18), crop 321x321 (here 32x32).') in reported[-1][1]

    # The same summary on the paper's recipe: step 1 of 5 done, the
    # paper's mIoU per step, not its last step.
    summary = run.to_dict()
    summary['recipe'] = dict(ILT_RECIPE)
    write_report(str(tmp_path / 'ld1'), summary)
    tables = md_tables((tmp_path / 'ld1' / 'report.md').read_text())
    ours, paper = table(tables, 'mIoU after each step')
    assert ours['M1(16)'] == f'{run.steps[1].metrics.mIoU:.1f}'
    assert (paper['M0(0-15)'], paper['M1(16)'], paper['all']) == ('75.5',
                                                                  '72.4', '')
    assert len(table(tables, 'Every metric after each step')) == 2

    # ... with λ'_D = 2 (not the paper's): no reference row.
    summary['incremental']['distill_terms']['output']['loss_weight'] = 2.0
    write_report(str(tmp_path / 'ld2'), summary)
    report = (tmp_path / 'ld2' / 'report.md').read_text()
    assert "References: none, no published reference for L'_D on voc " \
        f"15-1: {PAPER_LABEL} needs λ'_D 1.0 (here 2.0)." in report
    (ours, ) = table(md_tables(report), 'mIoU after each step')
    assert ours['source'] == 'ours'
