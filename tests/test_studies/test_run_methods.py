"""run_methods: several methods on one data root, sharing step 0."""
import os
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_incremental.studies.run_methods import run_methods
from test_experiment.utils import CFG_DIR, TINY, load


def test_run_methods(embedded_voc, tmp_path):
    work = tmp_path / 'work'
    configs = [
        osp.join(CFG_DIR, 'bench_15-1_ft.py'),
        osp.join(CFG_DIR, 'bench_15-1_ld.py')
    ]
    seen = []
    runs = run_methods(
        configs,
        str(work),
        embedded_voc,
        cfg_options=TINY,
        on_summary=lambda d, s: seen.append((d, len(s['steps']))))
    assert runs == [str(work / 'bench_15-1_ft'), str(work / 'bench_15-1_ld')]
    # on_summary after every step of every run, with the run's work dir.
    assert seen == [(runs[0], 1), (runs[0], 2), (runs[1], 1), (runs[1], 2)]
    for run, method in zip(runs, ('FT', "L'_D")):
        summary = load(osp.join(run, 'summary.json'))
        assert summary['method'] == method
        assert [s['step'] for s in summary['steps']] == [0, 1]
        step1 = Config.fromfile(osp.join(run, 'step_1', 'step_config.py'))
        assert step1.train_cfg.max_iters == 1
        for split in ('train', 'val', 'test'):
            dataset = step1[f'{split}_dataloader'].dataset
            assert dataset.data_root == embedded_voc
    # M_0 trained by the first run, reused from the shared store by the
    # second.
    store = str(work / 'step0_store')
    first = load(osp.join(runs[0], 'step_0', 'step_done.json'))
    second = load(osp.join(runs[1], 'step_0', 'step_done.json'))
    assert 'reused' not in first and second['reused'] is True
    assert second['checkpoint'].startswith(store)
    # Calling again resumes: no step is trained or evaluated again.
    done = [
        osp.join(r, f'step_{k}', 'step_done.json') for r in runs
        for k in (0, 1)
    ]
    stamps = [os.stat(p).st_mtime_ns for p in done]
    assert run_methods(
        configs, str(work), embedded_voc, cfg_options=TINY) == runs
    assert [os.stat(p).st_mtime_ns for p in done] == stamps


def test_run_dirs_must_differ(tmp_path):
    config = osp.join(CFG_DIR, 'bench_15-1_ft.py')
    with pytest.raises(ValueError, match='must differ'):
        run_methods([config, config], str(tmp_path), 'data')
    assert os.listdir(tmp_path) == []
