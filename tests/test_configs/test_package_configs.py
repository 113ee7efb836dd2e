"""The configs ship in the package: a config in any folder inherits them as
``mmseg_incremental::<path>``, from an editable install and from a wheel."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

from mmengine.config import Config

import mmseg_incremental
from mmseg_incremental.planning import (build_step_config, experiment_task,
                                        list_steps, step_iters)
from mmseg_incremental.utils import load_config
from test_experiment.utils import TOOL_TIMEOUT_S, assert_same_weights

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
USER_LD = """_base_ = ['mmseg_incremental::il/voc_19-1_ld.py']
iters_per_class = 7
"""


def _config_files(root):
    return sorted(
        osp.relpath(p, root)
        for p in glob.glob(osp.join(root, '**', '*'), recursive=True)
        if osp.isfile(p))


def test_package_configs_are_the_repository_configs():
    """``.mim/configs`` is a link to ``configs/``, not a copy to keep in
    step."""
    link = osp.join(ROOT, 'mmseg_incremental', '.mim', 'configs')
    assert osp.islink(link) and os.readlink(link) == '../../configs'
    package = osp.dirname(mmseg_incremental.__file__)
    assert osp.realpath(osp.join(package, '.mim', 'configs')) == \
        osp.realpath(CONFIGS)


def test_inherit_the_19_1_ld_experiment_from_any_folder(tmp_path):
    user = tmp_path / 'my_19-1_ld.py'
    user.write_text(USER_LD)
    cfg = load_config(str(user))
    base = osp.join(
        osp.dirname(mmseg_incremental.__file__), '.mim', 'configs', 'il',
        'voc_19-1_ld.py')
    assert base in cfg.text
    # The repository's experiment with the one value overridden, exactly:
    # no _scope_='mmseg_incremental' left in any type dict.
    expected = Config.fromfile(osp.join(CONFIGS, 'il', 'voc_19-1_ld.py'))
    expected.iters_per_class = 7
    assert cfg.to_dict() == expected.to_dict()
    assert Config.fromfile(str(user)).model._scope_ == 'mmseg_incremental'
    assert cfg.visualizer._scope_ == 'mmseg'  # from an mmseg:: base, kept

    assert (cfg.task, cfg.method, cfg.classifier) == ('19-1', "L'_D", 'fixed')
    assert cfg.iters_per_class == 7
    task = experiment_task(cfg)
    assert list_steps(cfg) == [0, 1]
    assert task.new_classes(1) == (20, )
    assert [step_iters(cfg, task, k) for k in (0, 1)] == [20 * 7, 7]
    step0 = build_step_config(cfg, 0, 'w0')
    step1 = build_step_config(cfg, 1, 'w1', teacher_checkpoint='m0.pth')
    assert step0.model.decode_head.num_classes == 21  # classifier='fixed'
    assert step1.model.decode_head.num_classes == 21
    assert step1.model.type == 'IncrementalEncoderDecoder'
    assert step1.model.num_old_classes == 20
    assert (step0.train_cfg.max_iters, step1.train_cfg.max_iters) == (140, 7)


def test_train_a_step_of_an_inherited_experiment(embedded_voc, tiny_m0,
                                                 tmp_path):
    """``tools/train_incremental.py`` run from the user's folder, on a config
    there that inherits an embedded-benchmark experiment: it trains the
    M_0 of the repository's config, bit for bit."""
    user_dir = tmp_path / 'my_project'
    user_dir.mkdir()
    (user_dir / 'my_ft.py').write_text(
        "_base_ = ['mmseg_incremental::embedded/bench_15-1_ft.py']\n"
        f'data_root = {embedded_voc!r}\n'
        'iters_per_class = 1\n'
        'max_step = 0\n'
        'total_batch_size = 4\n'
        'model = dict(data_preprocessor=dict(size=(32, 32)))\n')
    tool = osp.join(ROOT, 'tools', 'train_incremental.py')
    cmd = [sys.executable, tool, 'my_ft.py', '--work-dir', 'work_dirs/my_ft']
    result = subprocess.run(
        cmd,
        cwd=str(user_dir),
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    run = user_dir / 'work_dirs' / 'my_ft'
    with open(run / 'summary.json') as f:
        summary = json.load(f)
    assert (summary['config'], summary['method'],
            summary['task']) == ('my_ft.py', 'FT', '15-1')
    assert [s['step'] for s in summary['steps']] == [0]
    metrics = summary['steps'][0]['metrics']
    assert len(metrics['IoU']) == 16  # background + 15 classes of step 0
    with open(run / 'step_0' / 'step_done.json') as f:
        done = json.load(f)
    assert osp.basename(done['checkpoint']) == 'iter_16.pth'  # 16 x 1 iter
    # The same M_0 and metrics as the repository's config run in this
    # process (training is deterministic on the CPU).
    assert_same_weights(done['checkpoint'], tiny_m0['checkpoint'])
    assert metrics == tiny_m0['metrics']
    step_config = (run / 'step_0' / 'step_config.py').read_text()
    assert "_scope_='mmseg_incremental'" not in step_config


def test_wheel_ships_the_configs(tmp_path):
    """``pip wheel`` holds every file of ``configs/`` (the real files, not
    the link) under ``mmseg_incremental/.mim/configs``; installed from the
    wheel alone, the package resolves ``mmseg_incremental::`` bases."""
    # Build from a copy of what the build reads, so that a stale build/ of
    # the repository cannot add files to the wheel.
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.cfg', 'pyproject.toml', 'README.md'):
        shutil.copy(osp.join(ROOT, name), src / name)
    shutil.copytree(CONFIGS, src / 'configs')
    shutil.copytree(osp.join(ROOT, 'tools'), src / 'tools')
    shutil.copytree(
        osp.join(ROOT, 'mmseg_incremental'),
        src / 'mmseg_incremental',
        symlinks=True,
        ignore=shutil.ignore_patterns('__pycache__'))
    out = tmp_path / 'wheels'
    pip = [sys.executable, '-m', 'pip']
    build = ['wheel', str(src), '--no-deps', '--no-build-isolation', '-w']
    subprocess.run(
        pip + build + [str(out), '-q'],
        check=True,
        cwd=str(tmp_path),
        timeout=TOOL_TIMEOUT_S)
    wheel, = glob.glob(str(out / 'mmseg_incremental-*.whl'))
    prefix = 'mmseg_incremental/.mim/configs/'
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        packaged = sorted(n[len(prefix):] for n in names
                          if n.startswith(prefix))
        assert packaged == _config_files(CONFIGS)
        for name in packaged:
            with open(osp.join(CONFIGS, name), 'rb') as f:
                assert zf.read(prefix + name) == f.read(), name
    assert 'mmseg_incremental/.mim/model-index.yml' in names
    # The tools too (mmseg ships its own as .mim/tools), byte-identical.
    tools = [n for n in names if n.startswith('mmseg_incremental/.mim/tools/')]
    assert 'mmseg_incremental/.mim/tools/train_incremental.py' in tools
    assert 'mmseg_incremental/.mim/tools/dist_train_incremental.sh' in tools
    with zipfile.ZipFile(wheel) as zf:
        for name in tools:
            with open(osp.join(ROOT, 'tools', osp.basename(name)), 'rb') as f:
                assert zf.read(name) == f.read(), name
    assert prefix + 'il/voc_19-1_ld.py' in names
    assert prefix + '_base_/ilt_voc_deeplabv2_authors.py' in names

    # A non-editable install of the wheel, imported from another folder.
    target = tmp_path / 'site'
    install = ['install', '--no-deps', '--target', str(target), wheel]
    subprocess.run(pip + install + ['-q'], check=True, timeout=TOOL_TIMEOUT_S)
    user_dir = tmp_path / 'my_project'
    user_dir.mkdir()
    (user_dir / 'my_19-1_ld.py').write_text(USER_LD)
    probe = ('import json, mmseg_incremental\n'
             'from mmseg_incremental.utils import load_config\n'
             "cfg = load_config('my_19-1_ld.py')\n"
             'print(json.dumps([mmseg_incremental.__file__, cfg.text, '
             'cfg.method, cfg.classifier, cfg.iters_per_class]))\n')
    result = subprocess.run([sys.executable, '-c', probe],
                            cwd=str(user_dir),
                            capture_output=True,
                            text=True,
                            timeout=TOOL_TIMEOUT_S,
                            env=dict(os.environ, PYTHONPATH=str(target)))
    assert result.returncode == 0, result.stderr[-3000:]
    package, text, method, classifier, iters = json.loads(
        result.stdout.strip().splitlines()[-1])
    assert package == str(target / 'mmseg_incremental' / '__init__.py')
    assert str(target / 'mmseg_incremental' / '.mim' / 'configs' / 'il' /
               'voc_19-1_ld.py') in text
    assert CONFIGS + os.sep not in text
    assert (method, classifier, iters) == ("L'_D", 'fixed', 7)
