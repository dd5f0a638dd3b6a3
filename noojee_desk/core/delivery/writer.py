"""Outbox writes on a thread of their own, so a slow disk sync never stalls the event loop.

Answers and claims asked for while the thread is busy are written together, in one commit
(group commit): one disk sync for all of them, so the writes keep up however fast the answers
come, and an answer's commit never waits behind a queue of other commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from functools import partial
from typing import TypeVar, cast

from noojee_desk.core.delivery.outbox import Claim, GroupWrite, Outbox, Record
from noojee_desk.core.delivery.records import Attempt, Lead, Transition, is_locked

T = TypeVar("T")

#: At most this many writes in one commit.
GROUP_MAX = 256


class OutboxWriter:
    """One thread with its own connection to the outbox file; awaitable calls run there in order.

    Every commit is still durable (the outbox syncs to disk before a call returns); only the
    waiting moves off the caller's thread. Reads stay on the caller's own connection: SQLite's
    WAL mode lets them see each commit as soon as it is made. ``record`` and ``claim_due`` asked
    for while the thread is busy share one commit.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float]) -> None:
        self._local = threading.local()
        self._path = path
        self._clock = clock
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="outbox-writer", initializer=self._open
        )
        self._closed = False
        self._guard = threading.Lock()
        self._pending: list[tuple[GroupWrite, asyncio.Future[object]]] = []
        self._flush_queued = False
        self.commits = 0  # group commits made (for benchmarks and tests)
        self.grouped = 0  # writes made in them

    def _open(self) -> None:
        self._local.outbox = Outbox(self._path, clock=self._clock)

    def _run(self, work: Callable[[Outbox], T]) -> T:
        return work(self._local.outbox)

    async def run(self, work: Callable[[Outbox], T]) -> T:
        """``work(outbox)`` on the writer thread, with the writer's own connection."""
        if self._closed:
            raise RuntimeError("the outbox writer is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._run, work))

    async def claim_due(
        self,
        profile: str,
        limit: int,
        now: float,
        *,
        due_by: float | None = None,
        generated_ids_only: bool = False,
    ) -> list[Lead]:
        """``Outbox.claim_due`` on the writer thread (in a group commit)."""
        claim = Claim(profile, limit, now, due_by, generated_ids_only)
        return cast(list[Lead], await self._grouped(claim))

    async def record(self, attempt: Attempt, transition: Transition) -> Lead:
        """``Outbox.record`` on the writer thread (in a group commit)."""
        return cast(Lead, await self._grouped(Record(attempt, transition)))

    async def _grouped(self, write: GroupWrite) -> object:
        if self._closed:
            raise RuntimeError("the outbox writer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        with self._guard:
            self._pending.append((write, future))
            queue = not self._flush_queued
            self._flush_queued = True
        if queue:
            self._submit_flush(loop)
        return await future

    def _submit_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            job = loop.run_in_executor(self._executor, self._flush)
        except (RuntimeError, BrokenThreadPool) as exc:  # closed, or its connection never opened
            with self._guard:
                group, self._pending = self._pending, []
                self._flush_queued = False
            for _, future in group:
                _settle(future, False, exc)
            return
        job.add_done_callback(partial(self._flushed, loop))

    def _flushed(
        self,
        loop: asyncio.AbstractEventLoop,
        job: asyncio.Future[tuple[list[tuple[asyncio.Future[object], bool, object]], bool]],
    ) -> None:
        """On the loop: hand each write its result; the next group goes if more came."""
        results, more = job.result()
        if more:
            self._submit_flush(loop)
        for future, ok, value in results:
            _settle(future, ok, value)

    def _flush(self) -> tuple[list[tuple[asyncio.Future[object], bool, object]], bool]:
        """On the writer thread: every write asked for so far, in one commit."""
        with self._guard:
            group, self._pending = self._pending[:GROUP_MAX], self._pending[GROUP_MAX:]
            more = bool(self._pending)
            if not more:
                self._flush_queued = False
        outbox: Outbox | None = getattr(self._local, "outbox", None)
        results: list[tuple[bool, object]]
        if outbox is None:  # its connection never opened
            failed = RuntimeError("the outbox writer has no connection")
            return [(f, False, failed) for _, f in group], more
        try:
            done = outbox.write_group([write for write, _ in group])
            results = [(True, result) for result in done]
            self.commits += 1
            self.grouped += len(group)
        except sqlite3.OperationalError as exc:
            if is_locked(exc) or len(group) == 1:
                results = [(False, exc)] * len(group)
            else:
                results = self._one_by_one(outbox, group)
        except Exception as exc:
            results = [(False, exc)] if len(group) == 1 else self._one_by_one(outbox, group)
        return [(f, ok, value) for (_, f), (ok, value) in zip(group, results, strict=True)], more

    @staticmethod
    def _one_by_one(
        outbox: Outbox, group: list[tuple[GroupWrite, asyncio.Future[object]]]
    ) -> list[tuple[bool, object]]:
        results: list[tuple[bool, object]] = []
        for write, _ in group:
            try:
                results.append((True, outbox.write_one(write)))
            except Exception as exc:
                results.append((False, exc))
        return results

    def close(self) -> None:
        """Finish the calls already asked for, then close the connection and the thread."""
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            outbox = getattr(self._local, "outbox", None)
            if outbox is not None:
                outbox.close()

        with contextlib.suppress(BrokenThreadPool):  # its connection never opened
            self._executor.submit(shut)
        self._executor.shutdown(wait=True)


def _settle(future: asyncio.Future[object], ok: bool, value: object) -> None:
    if future.done():  # the caller gave up waiting (cancelled)
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(cast(BaseException, value))
