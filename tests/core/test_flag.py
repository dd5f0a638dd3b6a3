"""The flag the dispatcher, the desk and ``send`` wait on."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from noojee_desk.core.flag import Flag


@pytest.mark.asyncio
async def test_it_wakes_every_waiter_and_tells_a_timeout_from_a_set() -> None:
    flag = Flag()
    assert await flag.wait(0.01) is False
    waiting = [asyncio.ensure_future(flag.wait(5.0)) for _ in range(3)]
    await asyncio.sleep(0)
    flag.set()
    assert await asyncio.gather(*waiting) == [True, True, True]
    assert await flag.wait(0.0) is True  # set already: at once
    flag.clear()
    assert not flag.is_set()
    assert await flag.wait(0.0) is False


@pytest.mark.asyncio
async def test_a_cancelled_waiter_is_forgotten() -> None:
    flag = Flag()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert flag._waiters == []
    flag.set()  # nothing left to wake, nothing raised


def test_a_wait_whose_loop_ends_leaves_nothing_to_warn_about() -> None:
    """A wait begun on the loop's last turn (a window closed, a test over) and abandoned."""
    flag = Flag()
    loop = asyncio.new_event_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        waiting = loop.create_task(flag.wait(30.0))
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert not waiting.done()
        waiting.get_coro().close()
        loop.close()
        del waiting
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
