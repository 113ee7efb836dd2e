"""The exemplar memory (``memory_size``) in a real experiment: chosen
before each step k >= 1 from the previous step's split and memory, added
to the step's training set with its label map, reused on resume, part of
the experiment's fingerprint."""
import os
import os.path as osp

import pytest

from mmseg_incremental.experiment import IncrementalExperiment
from mmseg_incremental.experiment.check_splits import step_dataset
from mmseg_incremental.planning import (build_step_config,
                                        experiment_fingerprint_source,
                                        fingerprint)
from test_experiment.utils import load, tiny_cfg


def test_memory_is_chosen_added_and_reused(embedded_voc, step0_store,
                                           tmp_path):
    run = str(tmp_path / 'run')
    cfg = tiny_cfg(
        'bench_15-1_ft.py',
        embedded_voc,
        max_step=2,
        memory_size=6,
        iters_per_class_incremental=1,
        step0_store=step0_store)
    IncrementalExperiment(cfg, run).run()
    memories = [load(osp.join(run, f'step_{k}', 'memory.json'))
                for k in (1, 2)]
    assert not osp.exists(osp.join(run, 'step_0', 'memory.json'))

    # Step 1: 6 images of step 0's training split, balanced over S_0.
    split0 = step_dataset(build_step_config(cfg, 0, '').train_dataloader)
    labelled = dict(split0.candidate_labels())
    first = memories[0]
    assert len(first['memory']) == 6 and first['classes'] == list(range(1, 16))
    for name, labels in first['candidates']:
        assert labelled[name] == labels
    # Step 2: candidates from step 1's split and step 1's memory; classes
    # S_1 \ {0} (16 is new at step 1).
    assert memories[1]['classes'] == list(range(1, 17))
    split1 = build_step_config(cfg, 1, osp.join(run, 'step_1'), 't.pth')
    own1 = dict(
        step_dataset(split1.train_dataloader).candidate_labels())
    for name, labels in memories[1]['candidates']:
        assert name in own1 or [name, labels] in first['candidates']

    # The step's training set holds its split and the memory, mapped alike.
    with_memory = step_dataset(split1.train_dataloader)
    assert with_memory.num_memory == len(
        set(first['memory']) - set(own1))
    names = [osp.splitext(osp.basename(d['img_path']))[0]
             for d in with_memory.load_data_list()]
    assert set(first['memory']) <= set(names) | set(own1)
    assert len(with_memory) == len(own1) + with_memory.num_memory
    assert with_memory.get_label_map() == step_dataset(
        dict(split1.train_dataloader,
             dataset=dict(split1.train_dataloader.dataset,
                          memory_file=None))).get_label_map()

    # Resumed: the memory files are reused as they are.
    mtimes = [os.stat(osp.join(run, f'step_{k}', 'memory.json')).st_mtime_ns
              for k in (1, 2)]
    os.remove(osp.join(run, 'step_2', 'step_done.json'))
    IncrementalExperiment(cfg, run, resume=True).run()
    assert mtimes == [
        os.stat(osp.join(run, f'step_{k}', 'memory.json')).st_mtime_ns
        for k in (1, 2)
    ]

    # Part of what the experiment is: another memory size, another run.
    other = tiny_cfg('bench_15-1_ft.py', embedded_voc, max_step=2)
    assert fingerprint(experiment_fingerprint_source(other)) != \
        fingerprint(experiment_fingerprint_source(cfg))
    with pytest.raises(RuntimeError, match='another config'):
        IncrementalExperiment(other, run, resume=True).run()
