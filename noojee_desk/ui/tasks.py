"""Run coroutines from Qt slots on the one asyncio loop, and work off it in a worker thread; keep
references, report failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from noojee_desk.core.bulk import worker_job

log = logging.getLogger(__name__)


class Tasks:
    """Owns the tasks the UI starts; a failure is logged and handed to ``on_error``."""

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.on_error = on_error

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)
            if self.on_error is not None:
                self.on_error(f"Something went wrong: {exc}")

    async def in_worker(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` in the loop's executor, under the rules that keep the UI thread
        smooth meanwhile (``bulk.worker_job``: the collector paused, the GIL handed over often)."""
        with worker_job():
            return await asyncio.get_running_loop().run_in_executor(None, func, *args)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
