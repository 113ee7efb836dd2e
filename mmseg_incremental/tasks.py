"""Class-incremental task protocols as plain data.

A task splits the classes C of a dataset into steps. Step 0 learns S_0 (it
always holds class 0, the background), step k learns the new classes U_k, and
after step k the model knows S_k = S_{k-1} ∪ U_k. The model's output index i
is the i-th class of the task's class order (the steps concatenated), so for
the standard tasks it equals the dataset's class id.

.. code:: python

    >>> task = get_task('voc', '15-1')
    >>> task.num_steps, task.new_classes(1), len(task.seen_classes(1))
    (6, (16,), 17)
    >>> get_task('voc', dict(steps=[[0, 3, 7], [1, 2]])).class_order
    (0, 3, 7, 1, 2)
"""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple, Union

#: Number of classes of each dataset, background (class 0) included.
NUM_CLASSES: Dict[str, int] = {'voc': 21, 'ade': 151}


def _rng(start: int, stop: int) -> List[int]:
    """Inclusive integer range ``[start, stop]``."""
    return list(range(start, stop + 1))


def _steps_of(*bounds: Tuple[int, int]) -> List[List[int]]:
    return [_rng(a, b) for a, b in bounds]


def _chunks(first: int, last: int, size: int) -> List[List[int]]:
    return [
        _rng(a, min(a + size - 1, last)) for a in range(first, last + 1, size)
    ]


#: The task tables (docs/design.md §1): ``dataset -> name -> steps``.
TASKS: Dict[str, Dict[str, List[List[int]]]] = {
    'voc': {
        '19-1': _steps_of((0, 19), (20, 20)),
        '15-5': _steps_of((0, 15), (16, 20)),
        '15-1': [_rng(0, 15)] + _chunks(16, 20, 1),
        '10-1': [_rng(0, 10)] + _chunks(11, 20, 1),
        '10-10': _steps_of((0, 10), (11, 20)),
        '5-3': [_rng(0, 5)] + _chunks(6, 20, 3),
        'joint': [_rng(0, 20)],
    },
    'ade': {
        '100-50': _steps_of((0, 100), (101, 150)),
        '100-10': [_rng(0, 100)] + _chunks(101, 150, 10),
        '100-5': [_rng(0, 100)] + _chunks(101, 150, 5),
        '50-50': _steps_of((0, 50), (51, 100), (101, 150)),
        'joint': [_rng(0, 150)],
    },
}
#: Other names of the same tasks.
ALIASES: Dict[str, Dict[str, str]] = {'voc': {'15-5s': '15-1'}, 'ade': {}}

TaskSpec = Union[str, dict, 'IncrementalTask']


@dataclass(frozen=True)
class IncrementalTask:
    """The steps of a class-incremental task.

    Args:
        dataset (str): ``'voc'`` or ``'ade'``.
        name (str): The task's name (``'15-1'``) or ``'custom'``.
        steps (tuple[tuple[int]]): Original class ids learnt at each step.
    """

    dataset: str
    name: str
    steps: Tuple[Tuple[int, ...], ...]

    def __post_init__(self) -> None:
        _validate(self.dataset, self.name, self.steps)

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def class_order(self) -> Tuple[int, ...]:
        """Original ids in output-index order (all steps concatenated)."""
        return tuple(c for step in self.steps for c in step)

    def _check_step(self, step: int) -> None:
        if not isinstance(step, int) or not 0 <= step < self.num_steps:
            raise ValueError(
                f'step {step!r} is out of range for task {self.name!r} of '
                f'{self.dataset!r}, which has steps 0..{self.num_steps - 1}; '
                'pass one of those.')

    def new_classes(self, step: int) -> Tuple[int, ...]:
        """U_k: the original ids learnt at ``step``."""
        self._check_step(step)
        return self.steps[step]

    def seen_classes(self, step: int) -> Tuple[int, ...]:
        """S_k: the original ids known after ``step``, in output order."""
        self._check_step(step)
        return tuple(c for s in self.steps[:step + 1] for c in s)

    def old_classes(self, step: int) -> Tuple[int, ...]:
        """S_{k-1}: the original ids known before ``step`` (empty at 0)."""
        self._check_step(step)
        return tuple(c for s in self.steps[:step] for c in s)

    def future_classes(self, step: int) -> Tuple[int, ...]:
        """F_k = C minus S_k (ids not in any step count as future)."""
        seen = set(self.seen_classes(step))
        return tuple(
            c for c in range(NUM_CLASSES[self.dataset]) if c not in seen)

    def num_classes(self, step: int) -> int:
        """|S_k|: the number of outputs of the model after ``step``."""
        return len(self.seen_classes(step))

    def output_index(self, step: int) -> Dict[int, int]:
        """Map original id -> output index for the classes of S_k."""
        return {c: i for i, c in enumerate(self.seen_classes(step))}

    def step_output_indices(self, step: int) -> Tuple[Tuple[int, ...], ...]:
        """Output indices learnt at each step 0..``step``."""
        self._check_step(step)
        out, start = [], 0
        for s in self.steps[:step + 1]:
            out.append(tuple(range(start, start + len(s))))
            start += len(s)
        return tuple(out)

    def to_dict(self) -> dict:
        return dict(
            dataset=self.dataset,
            name=self.name,
            steps=[list(s) for s in self.steps])


def _validate(dataset: str, name: str, steps: Sequence[Sequence[int]]) -> None:
    where = f'task {name!r} of dataset {dataset!r}'
    if dataset not in NUM_CLASSES:
        raise ValueError(f'Unknown dataset {dataset!r}; use one of '
                         f'{sorted(NUM_CLASSES)}.')
    n = NUM_CLASSES[dataset]
    if len(steps) == 0:
        raise ValueError(f'{where} has no steps; give at least step 0, '
                         'e.g. steps=[[0, 1, 2], [3]].')
    seen: Dict[int, int] = {}
    for k, step in enumerate(steps):
        if len(step) == 0:
            raise ValueError(f'{where}: step {k} is empty; every step must '
                             'learn at least one class.')
        for c in step:
            if isinstance(c, bool) or not isinstance(c, int):
                raise ValueError(f'{where}: class {c!r} in step {k} is not '
                                 'an integer id.')
            if not 0 <= c < n:
                raise ValueError(f'{where}: class id {c} in step {k} is out '
                                 f'of range; {dataset} ids are 0..{n - 1}.')
            if c in seen:
                raise ValueError(
                    f'{where}: class {c} appears in step {seen[c]} and in '
                    f'step {k}; each class belongs to exactly one step.')
            seen[c] = k
    if steps[0][0] != 0:
        raise ValueError(
            f'{where}: background (class 0) must be the first class of step '
            '0 (output index 0, where old/unseen pixels are mapped); start '
            'the first step with 0.')


def known_tasks(dataset: str) -> List[str]:
    """Names accepted by :func:`get_task` for ``dataset``."""
    if dataset not in TASKS:
        raise ValueError(f'Unknown dataset {dataset!r}; use one of '
                         f'{sorted(TASKS)}.')
    return sorted(TASKS[dataset]) + sorted(ALIASES[dataset])


def get_task(dataset: str, name: TaskSpec) -> IncrementalTask:
    """Look up a task by name or build a custom one.

    Args:
        dataset (str): ``'voc'`` or ``'ade'``.
        name (str | dict | IncrementalTask): A name of the task table
            (``'19-1'``, ``'15-5'``, ``'15-1'``, ...), or a custom
            definition ``dict(steps=[[0, 3, 7], [1, 2], ...])`` (optionally
            with ``name``), or a task (returned after a dataset check).

    Returns:
        IncrementalTask: The validated task.
    """
    if isinstance(name, IncrementalTask):
        if name.dataset != dataset:
            raise ValueError(f'Task {name.name!r} belongs to dataset '
                             f'{name.dataset!r}, not {dataset!r}.')
        return name
    if isinstance(name, dict):
        unknown = set(name) - {'steps', 'name'}
        if unknown or 'steps' not in name:
            raise ValueError(
                f'A custom task is dict(steps=[[0, ...], [...], ...]) with an '
                f'optional name; got keys {sorted(name)}.')
        steps = tuple(tuple(s) for s in _as_lists(name['steps']))
        return IncrementalTask(dataset, str(name.get('name', 'custom')), steps)
    known = known_tasks(dataset)
    if not isinstance(name, str) or name not in known:
        raise ValueError(f'Unknown {dataset} task {name!r}; known tasks: '
                         f'{", ".join(known)} (or a custom '
                         'dict(steps=[[0, ...], ...])).')
    name = ALIASES[dataset].get(name, name)
    return IncrementalTask(dataset, name,
                           tuple(tuple(s) for s in TASKS[dataset][name]))


def _as_lists(steps: Iterable) -> List[List[int]]:
    try:
        return [list(s) for s in steps]
    except TypeError as err:
        raise ValueError(
            'Custom task steps must be a list of lists of class ids, e.g. '
            f'[[0, 1, 2], [3]]; got {steps!r}.') from err
