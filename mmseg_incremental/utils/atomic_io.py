"""Files that are either the old version or the new one, never half of one.

A file is written next to its target (same folder, so the same file
system), flushed to disk with ``fsync``, then renamed over the target with
``os.replace`` (atomic on POSIX); the folder is synced too, so the rename
survives a power cut. A writer killed at any point leaves the previous
file intact and at most a temporary file beside it.
"""
import contextlib
import errno
import json
import os
import os.path as osp
import shutil
from typing import Iterator


def fsync_dir(path: str) -> None:
    """Flush a folder's entries (a rename or a removal) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(src: str, dst: str) -> None:
    """Sync ``src`` to disk, then rename it over ``dst`` atomically.

    Args:
        src (str): A complete file in the folder of ``dst``.
        dst (str): The file to create or replace.
    """
    fd = os.open(src, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(src, dst)
    fsync_dir(osp.dirname(osp.abspath(dst)))


def temp_path(path: str) -> str:
    """The temporary name :func:`atomic_path` writes ``path`` under: same
    folder and extension (writers such as ``savefig`` go by it), this
    process's id (concurrent writers never share one)."""
    root, ext = osp.splitext(path)
    return f'{root}.tmp{os.getpid()}{ext}'


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary path to write ``path`` through.

    .. code:: python

        with atomic_path('D/report.md') as tmp:
            with open(tmp, 'w') as f:
                f.write(text)

    On success the temporary file replaces ``path`` (:func:`replace_file`);
    on an error (a full disk, say) it is removed and ``path`` is left as it
    was.

    Args:
        path (str): The file to write.

    Yields:
        str: The temporary path to write the whole content to.
    """
    tmp = temp_path(path)
    try:
        yield tmp
        replace_file(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(error, OSError):
            raise_if_disk_full(error, path)
        raise


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(text)


def read_json(path: str, what: str = 'file'):
    """Load a JSON file the run wrote, naming it when it is damaged.

    Args:
        path (str): The file.
        what (str): What it is, for the message (``'summary'``).

    Raises:
        DamagedFile: The file is missing, unreadable or not valid JSON
            (a truncated write, an edit); the message names it and the fix.
    """
    from .errors import DamagedFile
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise DamagedFile(f'{path} does not exist ({what}); pass the work '
                          'dir of an experiment run with '
                          'tools/train_incremental.py.') from None
    except (OSError, ValueError) as error:
        raise DamagedFile(
            f'{path} ({what}) is damaged: {error}. Restore it from a backup, '
            'or run the experiment again with --resume (finished steps '
            'keep their step_done.json; the summary is rewritten).') from None


def raise_if_disk_full(error: OSError, path: str) -> None:
    """Turn a full disk (or quota) while writing ``path`` into one line
    (:class:`~.errors.DiskFull`): the file, the free space, what to do.
    Any other error is left to the caller."""
    from .errors import DiskFull
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return
    folder = osp.dirname(osp.abspath(path))
    try:
        free = f'{shutil.disk_usage(folder).free / 2**20:.0f} MiB free'
    except OSError:
        free = 'free space unknown'
    raise DiskFull(
        f'No space left to write {path} ({free} on its disk); the previous '
        'version is intact and no partial file is left. Free space (or set '
        'max_keep_ckpts) and run again with --resume.') from error
