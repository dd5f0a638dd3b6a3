"""A flag a coroutine waits on, like ``asyncio.Event``, whose waiters are plain futures.

``Event.wait()`` is a coroutine: waiting on it beside something else (``asyncio.wait``,
``wait_for``) wraps it in a task, and a task whose first step never ran because its loop ended
(a window closed, a test over) leaves a "coroutine was never awaited" warning behind. A waiter of
a ``Flag`` is a future on the running loop: nothing of it is left when the loop goes.
"""

from __future__ import annotations

import asyncio


class Flag:
    """Set, cleared, waited on; ``set`` and ``clear`` from the loop's thread only."""

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    def future(self) -> asyncio.Future[None]:
        """Done once set (at once if set already); cancelling it only drops this waiter."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._set:
            waiter.set_result(None)
        else:
            self._waiters.append(waiter)
            waiter.add_done_callback(self._forget)
        return waiter

    async def wait(self, within: float | None = None) -> bool:
        """Until set, or ``within`` seconds passed; whether it is set."""
        if self._set:
            return True
        waiter = self.future()
        try:
            await asyncio.wait((waiter,), timeout=within)
        finally:
            waiter.cancel()
        return self._set

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
