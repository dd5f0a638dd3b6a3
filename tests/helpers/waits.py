"""Waiting in tests: for a condition on the running loop, in a plain thread, or for a Qt signal.

Nothing here imports Qt: a signal is anything with ``connect`` and ``disconnect``, so the core
and emulator tests import this module with Qt blocked. A wait that runs out raises
AssertionError naming what it waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, Protocol

from noojee_desk.core.flag import Flag


class Signal(Protocol):
    """A Qt signal instance, as far as waiting needs one."""

    def connect(self, slot: Callable[..., Any]) -> Any: ...

    def disconnect(self, slot: Callable[..., Any]) -> Any: ...


#: Takes a listener and returns the call that removes it again (``Dispatcher.subscribe``).
Subscribe = Callable[[Callable[[Any], None]], Callable[[], None]]


def _timed_out(what: str, condition: object, limit: float) -> AssertionError:
    return AssertionError(f"timed out after {limit:g} s waiting for {what or condition}")


async def until(
    condition: Callable[[], object],
    *wake: Signal,
    limit: float = 30.0,
    what: str = "",
    every: float | None = 0.02,
    subscribe: Subscribe | None = None,
) -> None:
    """Let the running loop run until ``condition()`` holds; fail after ``limit`` seconds.

    The condition is looked at every ``every`` seconds, and at once when one of the ``wake``
    signals fires. With ``subscribe`` (a dispatcher's), it is also looked at inside each event
    as it arrives: a state that lasts only until the next event is still seen. ``every=None``
    waits on the signals and events alone. ``condition`` may return an awaitable (a coroutine
    function's call), which is awaited each time.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    poke = Flag()
    seen = False

    def on_signal(*_args: object) -> None:
        poke.set()

    def on_event(_event: object) -> None:
        nonlocal seen
        if seen:
            return
        result = condition()
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # an async condition is awaited in the loop below instead
            poke.set()
        elif result:
            seen = True
            poke.set()

    for signal in wake:
        signal.connect(on_signal)
    unsubscribe = subscribe(on_event) if subscribe is not None else None
    try:
        while True:
            poke.clear()
            if seen:
                return
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _timed_out(what, condition, limit)
            await poke.wait(remaining if every is None else min(every, remaining))
    finally:
        if unsubscribe is not None:
            unsubscribe()
        for signal in wake:
            signal.disconnect(on_signal)


def wait_until(
    condition: Callable[[], object], limit: float = 30.0, what: str = "", *, every: float = 0.02
) -> None:
    """Block this thread until ``condition()`` holds (for tests of threads and processes)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise _timed_out(what, condition, limit)
        time.sleep(every)


async def next_signal(signal: Signal, limit: float = 30.0) -> tuple[Any, ...]:
    """The arguments of the next emission of ``signal``, awaited on the running (qasync) loop.

    Where the test is not itself a coroutine, ``qtbot.waitSignal`` does this better."""
    future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def fire(*args: Any) -> None:
        if not future.done():
            future.set_result(args)

    signal.connect(fire)
    try:
        return await asyncio.wait_for(future, limit)
    except TimeoutError:
        raise AssertionError(f"no signal {signal} within {limit:g} s") from None
    finally:
        signal.disconnect(fire)
