"""Files that are either the old version or the new one, never half of one.

A file is written next to its target (same folder, so the same file
system), flushed to disk with ``fsync``, then renamed over the target with
``os.replace`` (atomic on POSIX); the folder is synced too, so the rename
survives a power cut. A writer killed at any point leaves the previous
file intact and at most a temporary file beside it.
"""
import contextlib
import os
import os.path as osp
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
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(text)
