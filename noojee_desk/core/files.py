"""Writing files whole or not at all: a temporary file beside the target, synced, then renamed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(
    path: Path, mode: str = "w", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO]:
    """Yield a stream to a temporary file beside ``path``; on success it replaces ``path``.

    The data is synced to disk before the rename, so a crash or a full disk leaves either the old
    file or the new one, never half of one. ``encoding`` and ``newline`` go to ``open``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
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
