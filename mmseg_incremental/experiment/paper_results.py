"""The paper's numbers, printed beside ours in reports (DESIGN §4).

Michieli & Zanuttigh (ICCVW 2019), Pascal VOC 2012 val, DeepLab-v2 with a
ResNet-101 pretrained on MSCOCO; mIoU in percent. Only what DESIGN §4 lists:
old / new / all at the last step of 19-1, 15-5 and 15-1 (Tables 1-3), the
mIoU after each step of 15-1 (Table 4), and MiB's re-run of ILT. "old" is
the mIoU over S_0 with the background (the paper's 0-19 / 0-15 columns),
"new" over every class added since (20 / 16-20), "all" over S_K.

Method keys are the ``method`` strings of ``summary.json``: ``FT``,
``L'_D``, ``EF``, ``EF+L'_D``, ``L''_D``, ``L'_D+L''_D``, ``M0`` (the model
after step 0) and ``joint`` (all classes at once, split as the task).

.. code:: python

    >>> paper_result('voc', '19-1', "L'_D")
    OldNewAll(old=70.0, new=35.3, all=68.4)
    >>> paper_step_miou('voc', '15-1', 'FT')
    (75.5, 71.2, 53.8, 57.7, 39.3, 44.2)
"""
from typing import Dict, NamedTuple, Optional, Tuple

from ..tasks import ALIASES

#: The paper's rows, in the order of its tables.
METHODS: Tuple[str, ...] = ('FT', "L'_D", 'EF', "EF+L'_D", "L''_D",
                            "L'_D+L''_D", 'M0', 'joint')
#: Label of the paper's rows in every table and plot.
PAPER_LABEL = 'paper (VOC, R101)'
#: Label of MiB's re-run of ILT (Cermelli et al., CVPR 2020, Table 1).
MIB_LABEL = 'MiB re-run of ILT (VOC, R101, disjoint)'


class OldNewAll(NamedTuple):
    """mIoU (%) over the old classes, the new classes and all classes.

    ``new`` is None where the model has no new classes (M0).
    """

    old: Optional[float]
    new: Optional[float]
    all: Optional[float]


_R = OldNewAll
_M0_15 = _R(75.5, None, 75.5)
_JOINT_15 = _R(75.1, 68.5, 73.6)

#: ``task -> method -> old/new/all`` at the last step (paper, Tables 1-3).
PAPER_OLD_NEW_ALL: Dict[str, Dict[str, OldNewAll]] = {
    '19-1': {
        'FT': _R(67.3, 20.1, 65.1),
        "L'_D": _R(70.0, 35.3, 68.4),
        'EF': _R(71.9, 43.3, 70.5),
        "EF+L'_D": _R(72.5, 51.4, 71.5),
        "L''_D": _R(72.6, 50.6, 71.6),
        "L'_D+L''_D": _R(72.8, 49.9, 71.7),
        'M0': _R(73.4, None, 73.4),
        'joint': _R(73.7, 70.5, 73.6),
    },
    '15-5': {
        'FT': _R(60.6, 38.7, 55.4),
        "L'_D": _R(71.0, 49.0, 65.7),
        "EF+L'_D": _R(70.0, 45.8, 64.2),
        "L''_D": _R(65.6, 43.9, 60.5),
        'M0': _M0_15,
        'joint': _JOINT_15,
    },
    '15-1': {
        'FT': _R(47.8, 33.0, 44.2),
        "L'_D": _R(57.4, 34.9, 52.0),
        "EF+L'_D": _R(70.5, 44.2, 64.3),
        "L''_D": _R(65.9, 45.4, 61.0),
        'M0': _M0_15,
        'joint': _JOINT_15,
    },
}

#: mIoU of all seen classes after steps 1..5 of 15-1 (paper, Table 4).
PAPER_15_1_STEPS: Dict[str, Tuple[float, ...]] = {
    'FT': (71.2, 53.8, 57.7, 39.3, 44.2),
    "L'_D": (72.4, 68.1, 63.3, 54.1, 52.0),
    "EF+L'_D": (72.5, 68.4, 66.5, 61.3, 64.3),
    "L''_D": (72.2, 60.0, 65.5, 52.1, 61.0),
}

#: MiB's re-run of ILT under ``disjoint`` (their "1-19 / 20 / all" and
#: "1-15 / 16-20 / all" columns): ``old`` leaves the background out, so it
#: compares with our ``mIoU_old_nobg``. MiB's ILT distils outputs and
#: features (our ``variant='mib'`` L'_D plus L''_D).
MIB_RERUN: Dict[str, OldNewAll] = {
    '19-1': _R(69.1, 16.4, 66.4),
    '15-1': _R(3.7, 5.7, 4.2),
}
#: Our methods that MiB's re-run of ILT corresponds to.
MIB_METHODS: Tuple[str, ...] = ("L'_D+L''_D", )


def _canonical(dataset: str, task: str) -> Optional[str]:
    """The paper's task name, or None outside the paper (not VOC)."""
    if dataset != 'voc':
        return None
    return ALIASES['voc'].get(str(task), str(task))


def paper_result(dataset: str, task: str, method: str) -> Optional[OldNewAll]:
    """The paper's old/new/all mIoU at the last step of ``task``.

    Args:
        dataset (str): ``'voc'`` (other datasets have no paper numbers).
        task (str): ``'19-1'``, ``'15-5'``, ``'15-1'`` (or ``'15-5s'``).
        method (str): One of :data:`METHODS`.

    Returns:
        OldNewAll | None: None where the paper has no such row.
    """
    task = _canonical(dataset, task)
    return PAPER_OLD_NEW_ALL.get(task, {}).get(method)


def paper_step_miou(dataset: str, task: str,
                    method: str) -> Optional[Tuple[Optional[float], ...]]:
    """The paper's mIoU of all seen classes after each step 0..K.

    Step 0 is the paper's M0 (shared by every method); the last step is the
    method's "all". The steps in between are known for 15-1 only (Table 4),
    elsewhere they are None. ``M0`` gives its step 0 alone.

    Returns:
        tuple[float | None] | None: One value per step, or None where the
        paper has no row for ``method``.
    """
    task = _canonical(dataset, task)
    rows = PAPER_OLD_NEW_ALL.get(task)
    if rows is None or method not in rows or method == 'joint':
        return None
    m0 = rows['M0'].all
    if method == 'M0':
        return (m0, )
    if task == '15-1':
        steps = PAPER_15_1_STEPS.get(method)
        if steps is None:
            return (m0, None, None, None, None, rows[method].all)
        return (m0, ) + steps
    return (m0, rows[method].all)


def mib_rerun(dataset: str, task: str, method: str,
              setting: str) -> Optional[OldNewAll]:
    """MiB's re-run of ILT for a ``disjoint`` run of ``method``, else None.

    Its ``old`` excludes the background (compare with ``mIoU_old_nobg``).
    """
    if setting != 'disjoint' or method not in MIB_METHODS:
        return None
    return MIB_RERUN.get(_canonical(dataset, task))
