"""The exemplar memory's class-balanced choice (DKD's memory.py)."""
import collections

import pytest

from mmseg_incremental.datasets.exemplar_memory import (balanced_memory,
                                                        matching_memory,
                                                        memory_record,
                                                        write_memory)


def _candidates():
    # Class 1 is common (8 images), 2 has 3, 3 has 1; one image shows 1+2.
    out = [(f'a{i}', [1]) for i in range(8)]
    out += [(f'b{i}', [2]) for i in range(3)]
    out += [('c0', [3]), ('ab', [1, 2])]
    return out


def test_classes_take_turns():
    chosen = balanced_memory(_candidates(), [1, 2, 3], size=6, seed=0)
    assert len(chosen) == 6 and len({n for n, _ in chosen}) == 6
    # Three rounds: one image per class per round while a class has some.
    turns = collections.Counter()
    for name, labels in chosen:
        turns.update(labels)
    assert 'c0' in {n for n, _ in chosen}  # the rare class is kept
    assert turns[3] == 1 and turns[2] >= 2 and turns[1] >= 2
    # The same seed, the same memory; another seed, another order.
    assert balanced_memory(_candidates(), [1, 2, 3], 6, 0) == chosen
    assert balanced_memory(_candidates(), [1, 2, 3], 6, 1) != chosen


def test_round_robin_by_hand():
    """With one image per class and per round, the memory is the first
    ``size`` turns of the (shuffled) class order."""
    candidates = [(f'{c}_{i}', [c]) for c in (1, 2, 3) for i in range(2)]
    chosen = balanced_memory(candidates, [1, 2, 3], size=4, seed=3)
    classes = [labels[0] for _, labels in chosen]
    assert sorted(classes[:3]) == [1, 2, 3]  # round 1: every class once
    assert classes[3] == classes[0]  # round 2 starts in the same order


def test_stops_when_no_class_finds_a_candidate():
    chosen = balanced_memory([('x', [1]), ('y', [4])], [1, 2], 10, 0)
    assert [n for n, _ in chosen] == ['x']  # 'y' shows no old class


def test_record_is_reused_only_for_its_step_size_and_seed(tmp_path):
    path = str(tmp_path / 'memory.json')
    record = memory_record(2, 5, 7, [1, 2], [('b', [2]), ('a', [1])])
    assert record['memory'] == ['a', 'b']
    write_memory(path, record)
    assert matching_memory(path, 2, 5, 7) == record
    for other in ((3, 5, 7), (2, 6, 7), (2, 5, 8)):
        assert matching_memory(path, *other) is None
    assert matching_memory(str(tmp_path / 'none.json'), 2, 5, 7) is None
    (tmp_path / 'memory.json').write_text('{"format": 1, "st')
    with pytest.raises(Exception, match='exemplar memory'):
        matching_memory(path, 2, 5, 7)
