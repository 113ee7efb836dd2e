"""The experiment settings, declared once: misspelt keys and bad values
refused before anything is written, every shipped config valid, the docs
table generated from the declarations, and where data_root applies."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.planning import (EXPERIMENT_KEYS, SETTINGS,
                                        build_step_config, check_settings,
                                        config_data_roots, setting_sources,
                                        setting_value, settings_markdown,
                                        step_iters)
from mmseg_incremental.planning import plan as plan_module
from mmseg_incremental.planning import scalars as scalars_module
from mmseg_incremental.planning.settings import (SETTINGS_BY_NAME,
                                                 segmentor_arguments)
from test_experiment.utils import ROOT, run_tool

VOC_LD = osp.join(ROOT, 'configs', 'il', 'voc_15-1_ld.py')
PLOP = osp.join(ROOT, 'configs', 'embedded', 'bench_15-1_plop-overlapped.py')
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', 'il', '**', '*.py'), recursive=True) +
    glob.glob(osp.join(ROOT, 'configs', 'embedded', '*.py')))
SPLITS = ('train', 'val', 'test')
VOC_ROOT = 'data/VOCdevkit/VOC2012'


def _cfg(path: str = VOC_LD, **options) -> Config:
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    return cfg


def _roots(step_cfg: Config) -> tuple:
    return tuple(step_cfg[f'{split}_dataloader'].dataset.data_root
                 for split in SPLITS)


# The schema ---------------------------------------------------------------
def test_schema_covers_every_setting_once():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    old_keys = {
        'task', 'setting', 'eval_protocol', 'iters_per_class', 'lr_step0',
        'lr_incremental', 'lr_min', 'incremental', 'step0_store',
        'step0_store_timeout', 'max_step', 'method', 'lr_decay_horizon',
        'classifier', 'iters_per_class_incremental', 'distill_resolution',
        'void_as_background', 'checkpoints_per_step', 'eval_crop',
        'iters_per_step', 'memory_size', 'nan_policy',
        'amp', 'channels_last', 'cuda_graph', 'val_batch_size'
    }
    scalars = {'data_root', 'crop_size', 'pretrained', 'total_batch_size'}
    assert set(names) == old_keys | scalars
    # The step configs drop the experiment's keys, keep mmseg's scalars.
    assert set(EXPERIMENT_KEYS) == old_keys
    assert plan_module.EXPERIMENT_KEYS is EXPERIMENT_KEYS
    for setting in SETTINGS:
        assert setting.doc and setting.allowed
        if not setting.required:
            setting.validate(setting.default)  # every default is allowed


def test_defaults_live_in_the_schema_only():
    assert not hasattr(plan_module, '_DEFAULTS')
    cfg = _cfg()
    for key in ('iters_per_class', 'lr_step0', 'amp', 'val_batch_size'):
        cfg.pop(key, None)
    assert setting_value(cfg, 'iters_per_class') == 1000
    assert setting_value(cfg, 'amp') is None
    values = check_settings(cfg)
    assert (values['iters_per_class'], values['lr_step0'],
            values['val_batch_size']) == (1000, 1e-4, 1)
    task = plan_module.experiment_task(cfg)
    assert step_iters(cfg, task, 0) == 16 * 1000
    # A mutable default is copied, never shared.
    setting_value(cfg, 'incremental')['x'] = 1
    assert SETTINGS_BY_NAME['incremental'].default == {}


# Misspelt keys ------------------------------------------------------------
def test_misspelt_setting_is_refused():
    cfg = _cfg(iters_per_clas=3, teacher_cahce=True)
    with pytest.raises(ValueError) as info:
        check_settings(cfg, ['iters_per_clas', 'teacher_cahce'])
    lines = str(info.value).splitlines()
    assert lines[0].startswith('iters_per_clas=3 is no setting; did you '
                               'mean iters_per_class?')
    assert lines[1].startswith('teacher_cahce=True is no top-level setting; '
                               'did you mean incremental.teacher_cache?')
    assert len(lines) == 2
    # Without knowing the command line, the planner still refuses the
    # misspelt setting.
    with pytest.raises(ValueError, match='did you mean iters_per_class'):
        build_step_config(cfg, 0, 'w')


@pytest.mark.parametrize('key, near', [
    ('max_steps', 'max_step'),
    ('lr_incremnetal', 'lr_incremental'),
    ('Classifer', 'classifier'),
    ('data_roots', 'data_root'),
    ('eval_protocols', 'eval_protocol'),
])
def test_close_keys_name_the_setting(key, near):
    with pytest.raises(ValueError, match=f'did you mean {near}\\?'):
        check_settings(_cfg(**{key: 1}))


def test_mmseg_keys_and_helpers_are_not_refused():
    """mmseg configs have free variables; only names close to a setting
    are refused."""
    cfg = _cfg(
        norm_cfg=dict(type='BN'),
        batch_size=8,  # close to val_batch_size, but an mmseg helper
        num_classes=21,  # close to num_old_classes, an mmseg helper
        my_schedule=[1, 2],
        _private_lr_step=3,
        freeze_encoder=True)  # a helper in a config file: kept
    assert check_settings(cfg)['iters_per_class'] == 1000
    # Given on the command line, the segmentor's argument is refused.
    with pytest.raises(ValueError, match='incremental.freeze_encoder'):
        check_settings(cfg, ['freeze_encoder'])
    assert {'teacher_cache', 'freeze_encoder', 'new_class_init'} <= \
        segmentor_arguments()
    assert 'backbone' not in segmentor_arguments()  # mmseg's own


def test_cli_misspelling_stops_the_tool_before_anything(tmp_path):
    """The issue's command: it used to plan 16,000 iterations."""
    proc = run_tool('train_incremental.py', VOC_LD, '--dry-run', '--work-dir',
                    tmp_path / 'w', '--cfg-options', 'iters_per_clas=3',
                    'teacher_cahce=True')
    assert proc.returncode == 1
    assert 'did you mean iters_per_class?' in proc.stderr
    assert 'did you mean incremental.teacher_cache?' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert proc.stdout == ''
    assert not (tmp_path / 'w').exists()


# Bad values ---------------------------------------------------------------
@pytest.mark.parametrize('key, value, message', [
    ('iters_per_class', 0, 'iters_per_class=0 is invalid; use an int >= 1'),
    ('iters_per_class', 2.5, 'iters_per_class=2.5 is invalid; use an int'),
    ('iters_per_class', True, 'iters_per_class=True is invalid'),
    ('iters_per_class_incremental', 0,
     'iters_per_class_incremental=0 is invalid; use None or an int >= 1'),
    ('amp', 'bf17',
     "amp='bf17' is unknown; use None, 'bf16', 'fp16' or 'auto'"),
    ('lr_step0', -0.1, 'lr_step0=-0.1 is invalid; use a number >= 0'),
    ('lr_incremental', '5e-5',
     "lr_incremental='5e-5' is invalid; use a number >= 0"),
    ('lr_min', -1e-6, 'lr_min=-1e-06 is invalid; use a number >= 0'),
    ('lr_decay_horizon', 0.5,
     'lr_decay_horizon=0.5 is invalid; use a number >= 1'),
    ('classifier', 'grown', "classifier='grown' is unknown; use 'grow' or "
     "'fixed'"),
    ('distill_resolution', 'pixels', "distill_resolution='pixels' is "
     "unknown; use None, 'logits' or 'labels'"),
    ('setting', 'overlap', "setting='overlap' is unknown; use "
     "'sequential', 'disjoint' or 'overlapped'"),
    ('eval_protocol', 'all', "eval_protocol='all' is unknown"),
    ('channels_last', 'yes', "channels_last='yes' is invalid; use True or "
     'False'),
    ('val_batch_size', 0, 'val_batch_size=0 is invalid; use an int >= 1'),
    ('task', 15, 'task=15 is invalid; use a task name'),
    ('task', dict(classes=[1]), 'task=.* is invalid'),
    ('crop_size', (0, 321), r'crop_size=\(0, 321\) is invalid; use None, '
     r'an int >= 1 or an \(h, w\) pair'),
    ('total_batch_size', 0,
     'total_batch_size=0 is invalid; use None or an int >= 1'),
    ('max_step', -1, 'max_step=-1 is invalid; use None or an int >= 0'),
    ('incremental', [1], r'incremental=\[1\] is invalid; use a dict'),
    ('step0_store_timeout', -1, 'step0_store_timeout=-1 is invalid'),
    ('method', 3, 'method=3 is invalid; use None or a str'),
])
def test_bad_value_is_refused(key, value, message):
    cfg = _cfg()
    cfg[key] = value  # replaced, not merged into the config's value
    with pytest.raises(ValueError, match=message):
        check_settings(cfg)


def test_bad_values_refused_before_the_work_dir_is_written(tmp_path):
    cfg = _cfg(PLOP, iters_per_class=0, amp='bf17')
    with pytest.raises(ValueError) as info:
        IncrementalExperiment(cfg, str(tmp_path / 'run'))
    assert str(info.value).splitlines() == [
        'iters_per_class=0 is invalid; use an int >= 1 (docs/settings.md).',
        "amp='bf17' is unknown; use None, 'bf16', 'fp16' or 'auto' "
        '(docs/settings.md).'
    ]
    assert not (tmp_path / 'run').exists()
    assert not (tmp_path / 'step0_store').exists()


def test_missing_task_is_named():
    cfg = _cfg()
    cfg.pop('task')
    with pytest.raises(ValueError, match='no top-level `task`'):
        check_settings(cfg)


# Valid configs ------------------------------------------------------------
def test_paper_config_values():
    cfg = _cfg()
    before = cfg.to_dict()
    values = check_settings(cfg)
    assert values['task'] == '15-1'
    assert values['classifier'] == 'fixed'  # the authors' code
    assert values['distill_resolution'] == 'labels'
    assert values['lr_decay_horizon'] == 20
    assert (values['iters_per_class'], values['lr_step0'],
            values['lr_incremental'], values['lr_min']) == (1000, 1e-4, 5e-5,
                                                            1e-6)
    assert values['total_batch_size'] == 4
    assert values['crop_size'] == (321, 321)
    assert values['data_root'] == VOC_ROOT
    assert values['method'] == "L'_D"
    assert values['amp'] is None and values['max_step'] is None
    assert values['incremental'] == cfg.incremental.to_dict()
    assert type(values['incremental']) is dict
    # Defaults are returned, not written back: the fingerprint stays.
    assert cfg.to_dict() == before and 'amp' not in cfg


def test_embedded_config_values():
    values = check_settings(_cfg(PLOP))
    assert (values['task'], values['setting'],
            values['eval_protocol']) == ('15-1', 'overlapped',
                                         'unseen_as_background')
    assert (values['iters_per_class'], values['lr_step0'],
            values['lr_incremental'], values['lr_min']) == (40, 0.02, 0.01,
                                                            1e-4)
    assert values['total_batch_size'] == 16
    assert values['data_root'] == 'data/embedded_voc'
    assert values['method'] == 'PLOP'
    assert values['classifier'] == 'grow'  # the default


def _config_id(path: str) -> str:
    return osp.relpath(path, osp.join(ROOT, 'configs'))


@pytest.mark.parametrize('path', CONFIGS, ids=_config_id)
def test_every_shipped_config_is_valid(path):
    cfg = Config.fromfile(path)
    values = check_settings(cfg)
    for setting in SETTINGS:
        expected = cfg.get(setting.name, setting.default)
        if hasattr(expected, 'to_dict'):
            expected = expected.to_dict()
        assert values[setting.name] == expected, setting.name


# Sources ------------------------------------------------------------------
def test_setting_sources():
    cfg = _cfg(iters_per_class=3, **{'incremental.teacher_cache': {}})
    sources = setting_sources(cfg,
                              ['iters_per_class', 'incremental.teacher_cache'])
    assert sources['iters_per_class'] == '--cfg-options'
    assert sources['incremental'] == '--cfg-options'
    assert sources['lr_decay_horizon'] == 'config'  # a base sets 20
    assert sources['task'] == 'config'
    assert sources['amp'] == 'default'
    assert set(sources) == set(SETTINGS_BY_NAME)


# Docs ---------------------------------------------------------------------
def test_docs_table_in_sync():
    """docs/settings.md is tools/settings_table.py's output; rerun it after
    changing a setting."""
    with open(osp.join(ROOT, 'docs', 'settings.md'), encoding='utf-8') as f:
        assert f.read() == settings_markdown(), \
            'docs/settings.md is stale: run python tools/settings_table.py'


def test_docs_table_rows():
    text = settings_markdown()
    rows = [line for line in text.splitlines() if line.startswith('| `')]
    assert [row.split('`')[1] for row in rows] == [s.name for s in SETTINGS]
    assert "| `amp` | str | `None` | None, 'bf16', 'fp16' or 'auto' |" in text
    assert '| `iters_per_class` | int | `1000` | an int >= 1 |' in text
    assert '| `task` | str or dict | required |' in text
    assert '\\|S_0\\|' in text  # pipes escaped inside cells
    assert '## data_root' in text


# data_root ----------------------------------------------------------------
def test_data_root_of_the_base_config_works_as_is(monkeypatch):
    logged = []
    monkeypatch.setattr(scalars_module, '_log', logged.append)
    step = build_step_config(_cfg(), 0, 'w')
    assert _roots(step) == (VOC_ROOT, ) * 3
    assert not [line for line in logged if 'data_root' in line]
    assert config_data_roots(VOC_LD) == {VOC_ROOT}


def test_top_level_data_root_moves_every_dataset(monkeypatch):
    logged = []
    monkeypatch.setattr(scalars_module, '_log', logged.append)
    step = build_step_config(_cfg(data_root='/data/voc'), 1, 'w', 'p.pth')
    assert _roots(step) == ('/data/voc', ) * 3
    assert step.data_root == '/data/voc'  # an mmseg variable: kept
    moved = [line for line in logged if line.startswith('data_root=')]
    assert len(moved) == 3 and all(
        line.startswith("data_root='/data/voc' replaces") for line in moved)


def test_dataset_data_root_is_honoured(monkeypatch):
    """As in mmseg: an explicit dataset-level data_root is what that dataset
    reads; the top-level value moves the others."""
    logged = []
    monkeypatch.setattr(scalars_module, '_log', logged.append)
    own = _cfg(**{'train_dataloader.dataset.data_root': '/own/train'})
    roots = _roots(build_step_config(own, 0, 'w'))
    assert roots == ('/own/train', VOC_ROOT, VOC_ROOT)
    assert [line for line in logged if 'data_root' in line] == [
        "The IncrementalVOCDataset of train_dataloader keeps its own "
        "data_root='/own/train' (set for that dataset; the top-level "
        "data_root='data/VOCdevkit/VOC2012' applies to the others)."
    ]
    options = {
        'train_dataloader.dataset.data_root': '/own/train',
        'data_root': '/data/voc'
    }
    roots = _roots(build_step_config(_cfg(**options), 0, 'w'))
    assert roots == ('/own/train', '/data/voc', '/data/voc')
    # data_root = None: every dataset keeps its own.
    keep = _cfg(data_root=None)
    assert _roots(build_step_config(keep, 0, 'w')) == (VOC_ROOT, ) * 3


def test_data_root_of_a_leaf_file(tmp_path):
    """A leaf's top-level data_root moves the datasets its bases built from
    their own default; a dataset-level value written in the leaf stays."""
    base = osp.join(ROOT, 'configs', 'embedded', 'bench_15-1_ft.py')
    moved = tmp_path / 'moved.py'
    moved.write_text(f'_base_ = [{base!r}]\n'
                     "data_root = '/data/embedded'\n")
    step = build_step_config(Config.fromfile(str(moved)), 0, 'w')
    assert _roots(step) == ('/data/embedded', ) * 3
    defaults = config_data_roots(str(moved))
    assert defaults == {'/data/embedded', 'data/embedded_voc'}
    own = tmp_path / 'own.py'
    own.write_text(f'_base_ = [{base!r}]\n'
                   "data_root = '/data/embedded'\n"
                   "train_dataloader = dict(dataset=dict(data_root='/own'))\n")
    step = build_step_config(Config.fromfile(str(own)), 0, 'w')
    assert _roots(step) == ('/own', '/data/embedded', '/data/embedded')
