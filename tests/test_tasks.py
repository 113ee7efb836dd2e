"""The task tables and their validation."""
import pytest

from mmseg_incremental import get_task
from mmseg_incremental.tasks import known_tasks


@pytest.mark.parametrize('dataset, name, steps', [
    ('voc', '19-1', [list(range(20)), [20]]),
    ('voc', '15-5', [list(range(16)), [16, 17, 18, 19, 20]]),
    ('voc', '15-1', [list(range(16)), [16], [17], [18], [19], [20]]),
    ('voc', '15-5s', [list(range(16)), [16], [17], [18], [19], [20]]),
    ('voc', '10-1', [list(range(11))] + [[c] for c in range(11, 21)]),
    ('voc', '10-10', [list(range(11)), list(range(11, 21))]),
    ('voc', '5-3', [
        list(range(6)), [6, 7, 8], [9, 10, 11], [12, 13, 14], [15, 16, 17],
        [18, 19, 20]
    ]),
    ('voc', 'joint', [list(range(21))]),
    ('ade', '100-50', [list(range(101)),
                       list(range(101, 151))]),
    ('ade', '50-50',
     [list(range(51)),
      list(range(51, 101)),
      list(range(101, 151))]),
])
def test_task_tables(dataset, name, steps):
    task = get_task(dataset, name)
    assert [list(s) for s in task.steps] == steps
    assert task.num_steps == len(steps)


def test_ade_100_10_and_100_5():
    t10, t5 = get_task('ade', '100-10'), get_task('ade', '100-5')
    assert t10.num_steps == 6 and t5.num_steps == 11
    assert t10.new_classes(5) == tuple(range(141, 151))
    assert t5.new_classes(1) == (101, 102, 103, 104, 105)
    assert t5.seen_classes(10) == tuple(range(151))


def test_step_accessors():
    task = get_task('voc', '15-1')
    assert task.new_classes(2) == (17, )
    assert task.old_classes(2) == tuple(range(17))
    assert task.seen_classes(2) == tuple(range(18))
    assert task.old_classes(0) == ()
    assert task.future_classes(2) == (18, 19, 20)
    assert task.num_classes(5) == 21
    assert task.step_output_indices(2) == (tuple(range(16)), (16, ), (17, ))


def test_custom_order_maps_to_output_indices():
    task = get_task('voc', dict(steps=[[0, 3, 7], [1, 2]]))
    assert task.class_order == (0, 3, 7, 1, 2)
    assert task.output_index(1) == {0: 0, 3: 1, 7: 2, 1: 3, 2: 4}
    assert task.future_classes(1) == (4, 5, 6) + tuple(range(8, 21))


@pytest.mark.parametrize('steps, match', [
    ([[0, 1, 2], [2, 3]], 'appears in step 0 and in step 1'),
    ([[0, 1], [21]], 'out of range'),
    ([[1, 2], [0, 3]], 'background .* must be the first class of step 0'),
    ([[3, 0, 7], [1]], 'background .* must be the first class of step 0'),
    ([[0, 1], []], 'step 1 is empty'),
    ([], 'no steps'),
    ([[0, 'cat']], 'not an integer'),
])
def test_invalid_custom_tasks(steps, match):
    with pytest.raises(ValueError, match=match):
        get_task('voc', dict(steps=steps))


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError) as err:
        get_task('voc', '16-4')
    for name in known_tasks('voc'):
        assert name in str(err.value)
    with pytest.raises(ValueError, match='Unknown dataset'):
        get_task('cityscapes', '15-1')
    with pytest.raises(ValueError, match='out of range'):
        get_task('voc', '19-1').new_classes(2)
    with pytest.raises(ValueError, match='custom task'):
        get_task('voc', dict(step=[[0]]))
