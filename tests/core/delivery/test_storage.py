"""Storage that tells the truth: a lock held by another writer is waited out, an empty or foreign
file is damaged (never an empty queue), and each SQLite error has its own words."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.dispatch import FakeClient, Harness, leads

from noojee_desk.core.delivery import writer
from noojee_desk.core.delivery.dispatcher import QueueFigures
from noojee_desk.core.delivery.outbox import Outbox, set_aside
from noojee_desk.core.delivery.records import OutboxDamaged, storage_problem


def _aged(path: Path) -> None:
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))


def test_an_empty_file_that_was_there_is_damaged_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"")
    _aged(path)
    with pytest.raises(OutboxDamaged, match="is empty"):
        Outbox(path)
    assert path.stat().st_size == 0


def test_an_empty_file_just_made_by_another_opener_is_a_new_queue(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"")  # as another opener leaves it the moment before it makes the tables
    with Outbox(path) as box:
        assert box.count() == 0


def test_another_programs_database_is_not_a_queue(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.execute("INSERT INTO contacts VALUES ('Ann')")
    db.commit()
    db.close()
    with pytest.raises(OutboxDamaged, match="not a Noojee Desk queue"):
        Outbox(path)
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"contacts"}  # nothing of ours was written into it


def test_a_queue_with_a_table_missing_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE lead_phones")
    db.commit()
    db.close()
    with pytest.raises(OutboxDamaged):
        Outbox(path)


def test_setting_aside_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = tmp_path / "outbox.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        queue.with_name(queue.name + suffix).write_bytes(b"damaged" + suffix.encode())
    rename = Path.rename

    def failing(self: Path, target: Path) -> Path:
        if self.name.endswith("-wal"):
            raise PermissionError(13, "Permission denied", str(self))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(PermissionError) as caught:
        set_aside(queue, now=lambda: 1000.0)
    assert caught.value.filename == str(queue.with_name(queue.name + "-wal"))
    # The file moved first is back: no -wal is left beside a queue file that is not its own.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "outbox.sqlite3",
        "outbox.sqlite3-shm",
        "outbox.sqlite3-wal",
    ]
    assert queue.read_bytes() == b"damaged"
    monkeypatch.setattr(Path, "rename", rename)
    moved = set_aside(queue, now=lambda: 1000.0)
    assert [p.name for p in moved] == [
        "outbox.sqlite3.damaged-1000",
        "outbox.sqlite3-wal.damaged-1000",
        "outbox.sqlite3-shm.damaged-1000",
    ]


def test_each_sqlite_error_has_its_own_words() -> None:
    locked = storage_problem(sqlite3.OperationalError("database is locked"), "q.sqlite3")
    assert locked.locked
    assert "disk" not in (locked.sentence + locked.fix).lower()
    full = storage_problem(sqlite3.OperationalError("database or disk is full"))
    assert "full" in full.sentence
    assert "Free some disk space" in full.fix
    assert not full.damaged
    readonly = storage_problem(sqlite3.OperationalError("attempt to write a readonly database"))
    assert "read-only" in readonly.sentence
    io = storage_problem(sqlite3.OperationalError("disk I/O error"))
    assert "disk reported an error" in io.sentence
    malformed = storage_problem(sqlite3.DatabaseError("database disk image is malformed"))
    assert malformed.damaged
    assert "damaged" in malformed.sentence


@pytest.mark.asyncio
async def test_a_lock_held_by_another_writer_is_waited_out_without_a_disk_message(
    outbox: Outbox, make: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer gives up on the lock after 0.1 s (5 s in the app), so the holder outlasts it.
    monkeypatch.setattr(writer, "Outbox", functools.partial(Outbox, busy_timeout=0.1))
    figures: list[QueueFigures] = []
    client = FakeClient()
    h = make(client)
    h.dispatcher.subscribe(lambda e: figures.append(e) if isinstance(e, QueueFigures) else None)
    batch = h.enqueue(leads(30))
    holder = sqlite3.connect(outbox.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # a long write elsewhere (a huge paste, another process)
    released = threading.Event()

    def release_later() -> None:
        time.sleep(1.0)
        holder.execute("COMMIT")
        holder.close()
        released.set()

    threading.Thread(target=release_later, daemon=True).start()
    h.start()
    await asyncio.to_thread(released.wait, 10)
    await h.until(lambda: h.finished(batch), within=30)
    assert h.states() == {"delivered": 30}
    assert len(client.calls) == 30  # every answer recorded once, none sent again
    said = " ".join(f"{f.paused_reason} {f.fix}" for f in figures if f.paused_reason)
    assert "disk" not in said.lower()
    assert not any(f.needs_attention for f in figures)
