"""Errors that stop a run on purpose, with a message meant for the user.

The tools (``tools/train_incremental.py``, ``tools/test_incremental.py``,
``tools/write_report.py``) print a :class:`RunStopped` as one line,
without a traceback, and exit with its :attr:`~RunStopped.exit_code`.
Everything else is a bug and keeps its traceback.
"""


class RunStopped(RuntimeError):
    """A run stopped for a reason the message names, with the fix.

    Attributes:
        exit_code (int): The process's exit status for this stop.
    """

    exit_code = 1


class TrainingDiverged(RunStopped):
    """A loss or a parameter became non-finite (NaN or inf)."""


class Preempted(RunStopped):
    """SIGTERM, SIGINT or SIGUSR1 arrived; the step saved a checkpoint at
    its current iteration and the run stopped, to be resumed.

    Its exit status, 75 (``EX_TEMPFAIL`` of ``sysexits.h``: "try again
    later"), is the one ``tools/slurm_train_incremental.sh`` requeues on.
    """

    exit_code = 75


class DiskFull(RunStopped):
    """A file could not be written for lack of space."""


class DamagedFile(RunStopped):
    """A file the run needs is damaged (truncated, not JSON, ...)."""


#: The exit status of a preempted run (see :class:`Preempted`).
PREEMPTED_EXIT_CODE = Preempted.exit_code
