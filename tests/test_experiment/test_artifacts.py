"""No damaged or stale artifact is reused (issue 22, item 3), and a model
argument that is not one is named when the step is planned (item 5)."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import mmseg_incremental  # noqa: F401
from mmseg_incremental.experiment import Step0Store
from mmseg_incremental.experiment.check_splits import step_dataset
from mmseg_incremental.experiment.plan_check import PlanError, check_plan
from mmseg_incremental.experiment.step0_store import verify_checkpoint
from mmseg_incremental.models.segmentors.declarations import check_model
from mmseg_incremental.models.utils.teacher_cache import TeacherCache
from mmseg_incremental.planning import build_step_config, data_content_key
from test_experiment.utils import tiny_cfg


def _logits(seed):
    return torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(seed))


def test_damaged_teacher_cache_entry_is_recomputed_not_replayed(tmp_path):
    cache = TeacherCache(str(tmp_path), fingerprint='t')
    stored = {f'img{i}': _logits(i) for i in range(4)}
    for i, (key, logits) in enumerate(stored.items()):
        assert cache.store(key, (float(i), 0.0), logits)
    cache.close()
    # Flip one byte of entry 1's slot (what a bad disk or a torn write does).
    data = tmp_path / 'rank0.bin'
    raw = bytearray(data.read_bytes())
    slot_bytes = 2 * 3 * 4 * 4
    raw[slot_bytes + 5] ^= 0xFF
    data.write_bytes(bytes(raw))

    reopened = TeacherCache(str(tmp_path), fingerprint='t')
    sums = np.array([[float(i), 0.0] for i in range(4)])
    found = reopened.lookup(list(stored), sums)
    assert found[1] is None and reopened.damaged == 1
    for i in (0, 2, 3):
        torch.testing.assert_close(found[i], stored[f'img{i}'].half())
    # Stored again in a new slot; no other entry is overwritten.
    assert reopened.can_store('img1')
    assert reopened.store('img1', (1.0, 0.0), _logits(1))
    again = reopened.lookup(list(stored), sums)
    for i in range(4):
        torch.testing.assert_close(again[i], stored[f'img{i}'].half())
    reopened.close()
    # The re-stored entry survives a reopen (its later line wins).
    third = TeacherCache(str(tmp_path), fingerprint='t')
    assert [f is not None for f in third.lookup(list(stored), sums)] == \
        [True] * 4
    third.close()


def _checkpoint(path, value=1.0):
    torch.save(dict(state_dict=dict(w=torch.full((4, ), value))), path)
    return str(path)


def test_step0_store_verifies_m0_before_reuse(tmp_path):
    store = Step0Store(str(tmp_path / 'store'))
    source = dict(model='m', data='abc')
    stored = store.publish(source, _checkpoint(tmp_path / 'm0.pth'))
    assert store.lookup(source) == stored
    assert verify_checkpoint(stored) is None
    # Truncated in the store: set aside with one line, not served.
    with open(stored, 'r+b') as f:
        f.truncate(os.path.getsize(stored) // 2)
    assert store.lookup(source) is None
    aside = [e for e in os.listdir(store.root) if '.damaged-' in e]
    assert len(aside) == 1 and not osp.exists(osp.dirname(stored))
    # A diverged M_0 is never published.
    with pytest.raises(RuntimeError, match='non-finite weights'):
        store.publish(source,
                      _checkpoint(tmp_path / 'nan.pth', float('nan')))
    assert store.lookup(source) is None


def test_step0_data_is_keyed_by_content(embedded_voc, tmp_path):
    root = str(tmp_path / 'voc')
    shutil.copytree(embedded_voc, root)
    cfg = tiny_cfg('bench_15-1_ft.py', root)
    step0 = build_step_config(cfg, 0, work_dir='')
    key = data_content_key(step0.train_dataloader)
    # Copied elsewhere (new paths, new mtimes): the same key.
    other = str(tmp_path / 'copy')
    shutil.copytree(root, other)
    moved = build_step_config(tiny_cfg('bench_15-1_ft.py', other), 0, '')
    assert data_content_key(moved.train_dataloader) == key
    # One step-0 mask regenerated at the same path: another key.
    path = step_dataset(step0.train_dataloader)[0]['data_samples'].seg_map_path
    mask = np.array(Image.open(path))
    mask[mask == 255] = 0
    Image.fromarray(mask).save(path)
    assert data_content_key(step0.train_dataloader) != key


def test_unknown_segmentor_argument_is_named():
    model = dict(
        type='IncrementalEncoderDecoder',
        backbone=dict(type='ResNetV1c'),
        decode_head=dict(type='ASPPHead'),
        freeze_encodr=True)
    with pytest.raises(TypeError, match='incremental.freeze_encodr is not an '
                       'argument of IncrementalEncoderDecoder; did you mean '
                       'freeze_encoder'):
        check_model(model)
    legacy = dict(
        type='DistillEncoderDecoder',
        backbone=dict(type='ResNetV1c'),
        decode_head=dict(type='ASPPHead'),
        distill_output=dict(loss_weigth=2.0),
        distill_terms=dict(output=dict(type='OutputDistillTerm')))
    with pytest.raises(ValueError, match="distill_terms names \\['output'\\]"):
        check_model(legacy)


def test_whole_plan_is_checked_before_step0(embedded_voc, tmp_path):
    """A bad argument of step 1 stops the plan, naming the step, before
    anything is written."""
    cfg = tiny_cfg('bench_15-1_ld.py', embedded_voc)
    cfg.merge_from_dict({'incremental.distill_terms.output.loss_weigth': 2.0})
    with pytest.raises(PlanError, match='^step 1: distill_terms.output '
                       r'\(OutputDistillTerm\).*loss_weigth'):
        check_plan(cfg, str(tmp_path / 'd'))
    assert not (tmp_path / 'd').exists()
    good = tiny_cfg('bench_15-1_ld.py', embedded_voc)
    configs = check_plan(good, str(tmp_path / 'd'))
    assert len(configs) == 6 and not (tmp_path / 'd').exists()
    assert [c.model.type for c in configs] == \
        ['EncoderDecoder'] + ['IncrementalEncoderDecoder'] * 5


def test_checkpoints_per_step_bounds_a_hard_kill(embedded_voc):
    cfg = tiny_cfg('bench_15-1_ft.py', embedded_voc, iters_per_class=7)
    cfg.merge_from_dict({'default_hooks.checkpoint.interval': 1000})
    assert build_step_config(cfg, 0, '').default_hooks.checkpoint.interval \
        == 1000
    cfg.checkpoints_per_step = 10
    # Step 0: 16 classes (background + 15) x 7 = 112 iterations -> a
    # checkpoint every 12 (a kill loses at most 12 of 112).
    assert build_step_config(cfg, 0, '').default_hooks.checkpoint.interval \
        == 12
    # Step 1 (1 class x 7): every iteration.
    step1 = build_step_config(cfg, 1, '', teacher_checkpoint='t.pth')
    assert step1.default_hooks.checkpoint.interval == 1
    hooks = [h['type'] for h in step1.custom_hooks]
    assert 'DivergenceGuardHook' in hooks and 'PreemptionHook' in hooks
    # The paper configs ask for it.
    from mmseg_incremental.utils import load_config
    paper = load_config(
        osp.join(osp.dirname(osp.dirname(osp.dirname(
            osp.abspath(__file__)))), 'configs', 'il', 'voc_19-1_ld.py'))
    assert paper.checkpoints_per_step == 10


def test_summary_json_damaged_is_named(tmp_path):
    from mmseg_incremental.reporting import RunSummary
    from mmseg_incremental.reporting.run_summary import SummaryError
    (tmp_path / 'summary.json').write_text('{"task": "15-1", "ste')
    with pytest.raises(SummaryError, match='summary.json is damaged'):
        RunSummary.load(str(tmp_path))
    json.loads('{}')


def test_provenance_differences_name_what_differs():
    from mmseg_incremental.experiment.provenance import provenance_differences
    a = dict(data='a' * 64, git_commit='c1', version='0.1.0', torch='2.13',
             mmcv='2.1.0', mmengine='0.10.7', mmseg='1.2.2', device='cpu',
             world_size=1, seed=0)
    assert provenance_differences([a, dict(a)]) == []
    b = dict(a, data='b' * 64, mmseg='1.2.1')
    assert provenance_differences([a, b]) == [
        f'step-0 data ({"a" * 12}, {"b" * 12})', 'mmseg (1.2.2, 1.2.1)'
    ]
    assert provenance_differences([a, None]) == [
        'provenance (some runs predate its record)'
    ]


@pytest.mark.parametrize('status, requeued', [(75, True), (1, False),
                                              (0, False)])
def test_slurm_script_requeues_a_preempted_job(tmp_path, status, requeued):
    """srun (faked) exits 75 after a preemption: the script requeues its
    sbatch job and passes its status on; a requeued run adds --resume."""
    import subprocess
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'calls'
    for name, code in (('srun', status), ('scontrol', 0)):
        (bin_dir / name).write_text(
            f'#!/bin/sh\necho "{name} $*" >> {log}\nexit {code}\n')
        (bin_dir / name).chmod(0o755)
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env = dict(
        os.environ,
        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        SLURM_JOB_ID='42',
        SLURM_RESTART_COUNT='1')
    proc = subprocess.run(
        ['bash', osp.join(root, 'tools', 'slurm_train_incremental.sh'), 'p',
         'job', 'cfg.py', '--work-dir', 'D'],
        env=env, capture_output=True, text=True)
    assert proc.returncode == status, proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith('srun -p p --job-name=job')
    assert '--signal=USR1@120' in calls[0]
    assert calls[0].endswith('cfg.py --launcher=slurm --work-dir D --resume')
    assert (calls[1:] == ['scontrol requeue 42']) == requeued


def test_nan_policy_skip_needs_fp16_amp(embedded_voc):
    from mmseg_incremental.planning.plan import nan_skip_limit
    cfg = tiny_cfg('bench_15-1_ft.py', embedded_voc, nan_policy='skip')
    with pytest.raises(PlanError, match="step 0: nan_policy='skip' needs "
                       "amp='fp16' on a GPU"):
        check_plan(cfg, '/nonexistent/d')
    fp16 = dict(optim_wrapper=dict(type='AmpOptimWrapper', dtype='float16'))
    assert nan_skip_limit(fp16, 'skip') == 10
    assert nan_skip_limit(fp16, 'stop') == 0
    step = build_step_config(
        tiny_cfg('bench_15-1_ft.py', embedded_voc), 0, '')
    (guard, ) = [h for h in step.custom_hooks
                 if h['type'] == 'DivergenceGuardHook']
    assert guard['skip_limit'] == 0
