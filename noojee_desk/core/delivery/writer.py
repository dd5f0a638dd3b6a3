"""Outbox writes on a thread of their own, so a slow disk sync never stalls the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from functools import partial
from typing import TypeVar

from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import Attempt, Lead, Transition

T = TypeVar("T")


class OutboxWriter:
    """One thread with its own connection to the outbox file; awaitable calls run there in order.

    Every commit is still durable (the outbox syncs to disk before a call returns); only the
    waiting moves off the caller's thread. Reads stay on the caller's own connection: SQLite's
    WAL mode lets them see each commit as soon as it is made.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float]) -> None:
        self._local = threading.local()
        self._path = path
        self._clock = clock
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="outbox-writer", initializer=self._open
        )
        self._closed = False

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
        self, profile: str, limit: int, now: float, *, due_by: float | None = None
    ) -> list[Lead]:
        """``Outbox.claim_due`` on the writer thread."""
        return await self.run(lambda box: box.claim_due(profile, limit, now, due_by=due_by))

    async def record(self, attempt: Attempt, transition: Transition) -> Lead:
        """``Outbox.record`` on the writer thread."""
        return await self.run(lambda box: box.record(attempt, transition))

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
