"""Writing files whole or not at all, and keeping the app's own files private to its user.

On POSIX the files the app creates are 0600 and its folders 0700 whatever the umask; on Windows
the per-user folders already keep other users out and the modes are left to the system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
_POSIX = os.name == "posix"


def private_folder(path: Path) -> None:
    """Create ``path`` and its missing parents as 0700 folders; existing folders are left alone."""
    if path.is_dir():
        return
    if path.parent != path:
        private_folder(path.parent)
    try:
        os.mkdir(path, PRIVATE_FOLDER)
    except FileExistsError:
        if path.is_dir():
            return
        raise
    if _POSIX:
        os.chmod(path, PRIVATE_FOLDER)


def make_private(path: Path) -> None:
    """Take group and other access away from an existing ``path`` (best effort)."""
    if _POSIX:
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode
            if mode & 0o077:
                os.chmod(path, mode & 0o7700)


def private_file(path: Path) -> None:
    """Create ``path`` empty as a 0600 file, or take group and other access from an existing one."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        make_private(path)
        return
    os.close(handle)
    if _POSIX:
        os.chmod(path, PRIVATE_FILE)


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for ``open``: a file it creates is 0600 (at most, the umask applying)."""
    return os.open(path, flags, PRIVATE_FILE)


@contextlib.contextmanager
def atomic_write(
    path: Path, mode: str = "w", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO]:
    """Yield a stream to a temporary file beside ``path``; on success it replaces ``path``.

    The data is synced to disk before the rename, so a crash or a full disk leaves either the old
    file or the new one, never half of one. ``encoding`` and ``newline`` go to ``open``. The
    temporary file, and so the file it becomes, is 0600; missing folders are made 0700.
    """
    private_folder(path.parent)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        with open(temp, mode, encoding=encoding, newline=newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
