"""The lock file a process holds while it sends a profile's queue; freed when it dies."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Self

from noojee_desk.core.delivery.records import OutboxBusy
from noojee_desk.core.files import private_opener

#: How this process names itself in a profile's lock file ("the app", "'send'"); set by each.
PROGRAM = ""


class ProfileLock:
    """A lock file held while a dispatcher sends a profile's queue; freed when the process dies."""

    def __init__(self, path: Path, profile: str) -> None:
        self.path = path
        self.profile = profile
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock or raise OutboxBusy at once (saying who holds it).

        The holder writes who it is (pid, program, since when) after the first byte, the one
        that is locked on Windows, so that whoever finds the lock taken can say who holds it."""
        if self._file is not None:
            return
        handle = open(self.path, "a+b", opener=private_opener)  # noqa: SIM115 - held while locked
        try:
            if sys.platform == "win32":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            holder = self.holder()
            who = f" ({holder})" if holder else ""
            raise OutboxBusy(
                f"Another Noojee Desk window or 'send' command{who} is already sending the "
                f"queue of '{self.profile}'.",
                holder,
            ) from exc
        self._file = handle
        with contextlib.suppress(OSError):
            about = {
                "pid": os.getpid(),
                "program": PROGRAM or Path(sys.argv[0]).name or "python",
                "since": time.time(),
            }
            handle.seek(0)
            handle.truncate(0)
            handle.write(b"\n" + json.dumps(about).encode("utf-8") + b"\n")
            handle.flush()

    def holder(self) -> str:
        """Who holds the lock, as its lock file says: "'send' (pid 4242, since 10:02)"."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(1)
                about = json.loads(handle.read(4096).decode("utf-8", "replace"))
        except (OSError, ValueError):
            return ""
        if not isinstance(about, dict):
            return ""
        parts = []
        if about.get("pid"):
            parts.append(f"pid {about['pid']}")
        if isinstance(about.get("since"), (int, float)):
            parts.append("since " + time.strftime("%H:%M:%S", time.localtime(about["since"])))
        program = str(about.get("program") or "a Noojee Desk process")
        return f"{program} ({', '.join(parts)})" if parts else program

    def release(self) -> None:
        if self._file is None:
            return
        handle, self._file = self._file, None
        try:
            if sys.platform == "win32":
                import msvcrt

                handle.seek(0)
                with contextlib.suppress(OSError):
                    msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            handle.close()

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
