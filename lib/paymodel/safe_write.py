"""Writing output files without following symbolic links the command did not create.

A command that writes ``OUT/events.jsonl`` must not write into whatever a symbolic link
of that name points to (another user's file, a file of the system): ``open()`` follows
links. These helpers open with ``O_NOFOLLOW`` (the last component of the path may not
be a link), refuse a folder of the output that is a link, and refuse what is not a
regular file (a FIFO of that name would block the writer). The output folder itself
may be a link: the user chose it. The standard library has the flags but no helper,
hence these few lines.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "link").symlink_to(d / "elsewhere")
    >>> open_for_writing(d / "link")
    Traceback (most recent call last):
    ...
    paymodel.safe_write.SymlinkRefused: .../link: a symbolic link; refusing to write through it
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["SymlinkRefused", "make_dir", "open_for_writing", "refuse_symlink"]


class SymlinkRefused(OSError):
    """An output path is a symbolic link (or not a regular file): nothing is written through it."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def refuse_symlink(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SymlinkRefused` if ``path`` is a symbolic link."""
    if Path(path).is_symlink():
        raise SymlinkRefused(
            errno.ELOOP, "a symbolic link; refusing to write through it", os.fspath(path)
        )


def make_dir(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` (and its parents) unless it is a symbolic link."""
    path = Path(path)
    refuse_symlink(path)
    path.mkdir(parents=True, exist_ok=True)
    refuse_symlink(path)
    return path


def open_for_writing(path: str | os.PathLike[str], *, append: bool = False) -> BinaryIO:
    """Open a regular file for writing in binary, created if missing, never through a link.

    Args:
        path: the file; truncated unless ``append``.
        append: add to the end instead of truncating.

    Raises:
        SymlinkRefused: ``path`` is a symbolic link, or exists and is not a regular file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK) and Path(path).is_symlink():  # O_NOFOLLOW
            raise SymlinkRefused(
                errno.ELOOP, "a symbolic link; refusing to write through it", os.fspath(path)
            ) from None
        if e.errno == errno.ENXIO:  # a FIFO without a reader
            raise SymlinkRefused(e.errno, "a FIFO, not a regular file", os.fspath(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SymlinkRefused(errno.EINVAL, "not a regular file", os.fspath(path))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        if append:
            os.lseek(fd, 0, os.SEEK_END)
        else:
            os.ftruncate(fd, 0)
        return os.fdopen(fd, "ab" if append else "wb")
    except BaseException:
        os.close(fd)
        raise
