"""The emulator's state file: a JSON snapshot of its leads plus an append-only journal."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, TextIO

VERSION = 1


class StateFileError(Exception):
    """The state file or its journal cannot be read; it is left untouched."""


class StateFileInUse(StateFileError):
    """Another emulator holds the state file; nothing was read or written."""


class StateFile:
    """Durable leads for a standalone emulator (implements ``emulator.LeadJournal``).

    ``FILE`` holds ``{"version": 1, "leads": [...]}``; ``FILE.journal`` gets one JSON line per
    insert or reset as it happens, so a killed emulator loses nothing it answered OK. ``compact()``
    (at start and at stop) folds the journal into the snapshot with an atomic replace. Replaying the
    journal on top of a newer snapshot is harmless: leads carry ids and are added once.

    ``lock()`` takes an OS lock on ``FILE.lock`` (kept beside it, never replaced, so the lock
    survives compaction) for as long as the emulator runs; the OS releases it when the process
    ends, even when it is killed.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._journal: TextIO | None = None
        self._lock: IO[bytes] | None = None

    def lock(self) -> None:
        """Hold the state file for this process; raises StateFileInUse when another one holds it,
        StateFileError when the lock file cannot be opened. The state file itself is not touched.
        """
        if self._lock is not None:
            return
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.lock_path.open("a+b")
        except OSError as exc:
            raise StateFileError(f"cannot open {self.lock_path}: {exc}") from exc
        try:
            _lock_file(handle)
        except OSError:
            holder = _read_holder(handle)
            handle.close()
            who = f"process {holder}" if holder else "another process"
            raise StateFileInUse(
                f"{self.path} is in use by another emulator ({who}); stop it first "
                "or give another --state file"
            ) from None
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()).encode("ascii"))
            handle.flush()
        self._lock = handle

    def unlock(self) -> None:
        """Let another emulator use the state file (the lock file stays, empty of meaning)."""
        handle, self._lock = self._lock, None
        if handle is not None:
            with contextlib.suppress(OSError):
                _unlock_file(handle)
            handle.close()

    def load(self) -> list[dict[str, Any]]:
        """The leads in the snapshot with the journal replayed; [] when neither file exists."""
        leads: dict[int, dict[str, Any]] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise StateFileError(f"cannot read the state file {self.path}: {exc}") from exc
            if not isinstance(raw, dict) or not isinstance(raw.get("leads"), list):
                raise StateFileError(
                    f"{self.path} is not an emulator state file (no 'leads' list in it)"
                )
            if raw.get("version", VERSION) != VERSION:
                raise StateFileError(f"{self.path} has version {raw.get('version')!r}, not 1")
            for lead in raw["leads"]:
                _add(leads, lead, self.path)
        if self.journal_path.exists():
            self._replay(leads)
        return list(leads.values())

    def _replay(self, leads: dict[int, dict[str, Any]]) -> None:
        try:
            lines = self.journal_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise StateFileError(f"cannot read {self.journal_path}: {exc}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                if number == len(lines):
                    break  # the last line was cut short when the process was killed
                raise StateFileError(f"{self.journal_path}, line {number}: {exc}") from exc
            if entry.get("op") == "reset":
                leads.clear()
            elif entry.get("op") == "insert":
                _add(leads, entry.get("lead"), self.journal_path)
            else:
                raise StateFileError(f"{self.journal_path}, line {number}: unknown entry")

    def record_insert(self, lead: dict[str, Any]) -> None:
        self._append({"op": "insert", "lead": lead})

    def record_reset(self) -> None:
        self._append({"op": "reset"})

    def _append(self, entry: dict[str, Any]) -> None:
        if self._journal is None:
            self._journal = self.journal_path.open("a", encoding="utf-8")
        self._journal.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._journal.flush()

    def compact(self, leads: list[dict[str, Any]]) -> None:
        """Write ``leads`` as the snapshot (atomically), then empty the journal."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": VERSION, "leads": leads}, ensure_ascii=False, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.close()
        self.journal_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


if sys.platform == "win32":
    import msvcrt

    def _lock_file(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock_file(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(handle: IO[bytes]) -> None:
        # flock, not lockf: a second open of the file conflicts even within one process
        # (lockf locks belong to the process), and the file is not inherited by child processes.
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_holder(handle: IO[bytes]) -> str:
    """The process id the holder wrote into the lock file, or "" when it cannot be read."""
    try:
        handle.seek(0)
        text = handle.read(32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdecimal() else ""


def _add(leads: dict[int, dict[str, Any]], lead: Any, source: Path) -> None:
    if not isinstance(lead, dict) or isinstance(lead.get("id"), bool):
        raise StateFileError(f"{source}: a lead entry is malformed: {str(lead)[:80]}")
    if not isinstance(lead.get("id"), int):
        raise StateFileError(f"{source}: a lead has no whole-number id: {str(lead)[:80]}")
    leads.setdefault(lead["id"], lead)
