"""Outbox writes on their own thread: results come back in order and the loop keeps running."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import Attempt, LeadInput, State, Target, Transition
from noojee_desk.core.delivery.writer import OutboxWriter


@pytest.mark.asyncio
async def test_writes_run_on_the_writer_thread_and_are_seen_by_readers(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    reader = Outbox(path)
    reader.enqueue(
        "P", Target(1, 2, 3), [LeadInput({"Name": "A", "FirstPhone": "0370100001"})],
        allow_duplicates=False, source="t",
    )  # fmt: skip
    writer = OutboxWriter(path, clock=time.time)
    try:
        claimed = await writer.claim_due("P", 5, time.time())
        assert [lead.state for lead in claimed] == [State.SENDING]
        assert reader.counts("P")[State.SENDING] == 1  # the reader sees the commit at once
        lead = claimed[0]
        updated = await writer.record(
            Attempt(lead.id, 1.0, 1.2, "delivered", 0, "OK", 0.2),
            Transition(State.DELIVERED, code=0),
        )
        assert updated.state is State.DELIVERED
        assert reader.get(lead.id).state is State.DELIVERED  # type: ignore[union-attr]
    finally:
        writer.close()
        reader.close()


@pytest.mark.asyncio
async def test_a_slow_commit_does_not_stall_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    seen_threads: list[str] = []

    def slow_counts(self: Outbox, profile: str | None = None, batch_id: int | None = None):
        seen_threads.append(threading.current_thread().name)
        time.sleep(0.3)  # a disk sync under load
        return "done"

    monkeypatch.setattr(Outbox, "counts", slow_counts)
    writer = OutboxWriter(path, clock=time.time)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    task = asyncio.ensure_future(ticker())
    try:
        assert await writer.run(lambda box: box.counts("P")) == "done"
    finally:
        task.cancel()
        writer.close()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 10
    assert max(gaps) < 0.15
    assert seen_threads[0].startswith("outbox-writer")


@pytest.mark.asyncio
async def test_closed_writer_refuses_calls(tmp_path: Path) -> None:
    writer = OutboxWriter(tmp_path / "outbox.sqlite3", clock=time.time)
    await writer.run(lambda box: box.counts("P"))
    writer.close()
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        await writer.run(lambda box: box.counts("P"))


def _queue(path: Path, count: int) -> Outbox:
    box = Outbox(path)
    box.enqueue(
        "P", Target(1, 2, 3),
        [LeadInput({"Name": f"A{i}", "FirstPhone": f"03701{i:05d}"}) for i in range(count)],
        allow_duplicates=False, source="t",
    )  # fmt: skip
    return box


@pytest.mark.asyncio
async def test_answers_and_claims_asked_for_together_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    reader = _queue(path, 12)
    writer = OutboxWriter(path, clock=time.time)
    try:
        claimed = await writer.claim_due("P", 6, time.time())
        commits = writer.commits
        answers = [
            writer.record(
                Attempt(lead.id, 1.0, 1.2, "delivered", 0, "OK", 0.2),
                Transition(State.DELIVERED, code=0),
            )
            for lead in claimed
        ]
        results = await asyncio.gather(*answers, writer.claim_due("P", 6, time.time()))
        *recorded, more = results
        assert [lead.state for lead in recorded] == [State.DELIVERED] * 6  # type: ignore[union-attr]
        assert len(more) == 6  # type: ignore[arg-type]
        # The first write starts a commit at once; the rest, asked for meanwhile, share one.
        assert writer.commits - commits <= 2
        assert reader.counts("P").as_dict()["delivered"] == 6
        assert reader.counts("P").as_dict()["sending"] == 6
    finally:
        writer.close()
        reader.close()


@pytest.mark.asyncio
async def test_a_failing_write_in_a_group_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    reader = _queue(path, 2)
    writer = OutboxWriter(path, clock=time.time)
    try:
        claimed = await writer.claim_due("P", 2, time.time())
        answers = [
            writer.record(
                Attempt(lead_id, 1.0, 1.2, "delivered", 0, "OK", 0.2),
                Transition(State.DELIVERED, code=0),
            )
            for lead_id in (claimed[0].id, 999, claimed[1].id)  # 999: no such lead
        ]
        results = await asyncio.gather(*answers, return_exceptions=True)
        assert isinstance(results[1], sqlite3.IntegrityError)  # its attempt has no lead
        assert [r.state for r in (results[0], results[2])] == [State.DELIVERED] * 2  # type: ignore[union-attr]
        assert reader.counts("P").as_dict()["delivered"] == 2
    finally:
        writer.close()
        reader.close()
