"""An asyncio event loop on simulated time: ``asyncio.sleep`` and every timer run at once, in
order, while work handed to threads (the outbox writer, ``to_thread``) is waited for in real time.

Use it to run minutes or hours of a dispatcher's life in a moment: ``run(coro)`` returns the
coroutine's result; ``loop.time()`` is the simulated monotonic clock.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.BaseSelector):
    """The real selector, except that waiting for a timer moves the simulated clock instead."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualTimeLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if loop.threads_working:  # a thread's answer is due: wait for it in real time
            return self._real.select(0.5)
        if timeout is None:
            return self._real.select(None)
        loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.threads_working = 0
        selector = _Selector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> Any:
        future = super().run_in_executor(executor, func, *args)
        self.threads_working += 1

        def done(_: object) -> None:
            self.threads_working -= 1

        future.add_done_callback(done)
        return future


def run(coro: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Run ``coro`` to its end on a fresh ``VirtualTimeLoop``."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
