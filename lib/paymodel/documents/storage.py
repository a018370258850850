"""A TinyDB storage that survives crashes, writes stable files, batches, and has one writer.

TinyDB's stock ``JSONStorage`` rewrites its file in place (seek, write, truncate): a
process killed in the middle leaves half a file. :class:`AtomicJSONStorage` writes the
whole database to a temporary file in the same folder, fsyncs it, renames it over the old
file (``os.replace`` is atomic on POSIX) and fsyncs the folder, so the file on disk is
always a complete state: the one before a write or the one after it.

* Stable files: keys sorted, two-space indent, one trailing newline (orjson), so the same
  documents inserted in the same order give byte-identical files.
* Batches: inside :meth:`AtomicJSONStorage.batch`, writes stay in memory and reach the
  disk once, when the outermost batch exits without an exception (an exception discards
  them: the file keeps the state before the batch).
* One writer: opening for writing takes an exclusive lock (the ``filelock`` package,
  ``flock`` on POSIX) on ``<file>.lock``; a second writer, in this process or another,
  gets :class:`StoreLockedError` naming the file. The kernel drops the lock when the
  process dies, even by SIGKILL. Readers (``read_only=True``) take no lock: thanks to the
  rename they never see a half-written file.

Example:
    >>> import tempfile, pathlib
    >>> from tinydb import TinyDB
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "db.json"
    >>> db = TinyDB(path, storage=AtomicJSONStorage)
    >>> with db.storage.batch():
    ...     _ = db.insert({"b": 1, "a": 2})
    ...     _ = db.insert({"c": 3})
    >>> print(path.read_text(), end="")
    {
      "_default": {
        "1": {
          "a": 2,
          "b": 1
        },
        "2": {
          "c": 3
        }
      }
    }
    >>> try:
    ...     TinyDB(path, storage=AtomicJSONStorage)
    ... except StoreLockedError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    /.../db.json is open for writing by another writer (lock /.../db.json.lock); close it, or open it read-only
    >>> db.close()
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import orjson
from tinydb.storages import Storage

__all__ = ["AtomicJSONStorage", "StoreLockedError", "atomic_write_bytes"]

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE


class StoreLockedError(RuntimeError):
    """Another writer holds the file: a second writer would lose one of the two's writes."""


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Replace ``path`` with ``payload`` atomically and durably (temp, fsync, rename, fsync dir)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AtomicJSONStorage(Storage):
    """TinyDB storage: atomic, durable, sorted, batched, single-writer (see the module)."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock: filelock.BaseFileLock | None = None
        self._data: dict[str, Any] | None = None
        self._stat: tuple[int, int, int] | None = None
        self._depth = 0
        self._dirty = False
        if not read_only:
            lock_path = f"{self.path}.lock"
            lock = filelock.FileLock(lock_path, timeout=0, is_singleton=False)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise StoreLockedError(
                    f"{self.path} is open for writing by another writer (lock {lock_path});"
                    " close it, or open it read-only"
                ) from None
            self._lock = lock
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A writer killed between writing its temp file and renaming it left the temp file.
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                stale.unlink()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def read(self) -> dict[str, Any] | None:
        if self._depth or (
            self._data is not None and (self._lock or self._signature() == self._stat)
        ):
            # The writer owns the file, so its last write is the state; a reader re-reads
            # only when the file was replaced since.
            return self._data
        self._stat = self._signature()
        if self._stat is None:
            self._data = None
            return None
        raw = self.path.read_bytes()
        self._data = orjson.loads(raw) if raw.strip() else None
        return self._data

    def write(self, data: dict[str, Any]) -> None:
        if self.read_only:
            raise PermissionError(f"{self.path}: opened read-only")
        self._data = data
        if self._depth:
            self._dirty = True
            return
        self._flush()

    def _flush(self) -> None:
        try:
            atomic_write_bytes(self.path, orjson.dumps(self._data, option=_OPTIONS))
        except BaseException:
            self._data = None  # the disk holds the previous state: read it back next time
            raise
        self._stat = self._signature()
        self._dirty = False

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Hold every write until the outermost batch exits, then write once."""
        self.read()
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if not self._depth:
                self._data, self._dirty = None, False
            raise
        self._depth -= 1
        if not self._depth and self._dirty:
            self._flush()

    def close(self) -> None:
        if self._depth:
            raise RuntimeError(f"{self.path}: close() inside a batch")
        if self._lock is not None:
            self._lock.release()
            self._lock = None
