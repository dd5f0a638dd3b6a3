"""What the tests share works as they rely on: the waits see what they wait for, and say so
when it never comes; the desks are built as asked."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import waits
from helpers.desks import FAST, demo_emulator, make_core_desk, make_desk

from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.delivery.records import LeadInput, Target
from noojee_desk.core.leads.layouts import FieldLayout, field_spec
from noojee_desk.sim.emulator import Emulator


class FakeSignal:
    """Connects, disconnects and emits like a Qt signal instance."""

    def __init__(self) -> None:
        self.slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self.slots.append(slot)

    def disconnect(self, slot: Callable[..., Any]) -> None:
        self.slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self.slots):
            slot(*args)


class Events:
    """A dispatcher's subscribe: listeners get each event until they unsubscribe."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[object], None]] = []

    def subscribe(self, listener: Callable[[object], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def send(self, event: object) -> None:
        for listener in list(self.listeners):
            listener(event)


@pytest.mark.asyncio
async def test_until_returns_once_the_condition_holds() -> None:
    loop = asyncio.get_running_loop()
    done = [False]
    loop.call_later(0.05, done.__setitem__, 0, True)
    started = time.monotonic()
    await waits.until(lambda: done[0], limit=5)
    assert 0.04 <= time.monotonic() - started < 2


@pytest.mark.asyncio
async def test_until_fails_naming_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match="the impossible"):
        await waits.until(lambda: False, limit=0.1, what="the impossible")
    assert time.monotonic() - started < 2


@pytest.mark.asyncio
async def test_until_awaits_an_async_condition() -> None:
    calls = 0

    async def third_time() -> bool:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return calls >= 3

    await waits.until(third_time, limit=5, every=0.001)
    assert calls == 3


@pytest.mark.asyncio
async def test_until_wakes_on_a_signal_not_the_next_poll() -> None:
    signal = FakeSignal()
    done = [False]

    def fire() -> None:
        done[0] = True
        signal.emit("x")

    asyncio.get_running_loop().call_later(0.02, fire)
    started = time.monotonic()
    await waits.until(lambda: done[0], signal, limit=5, every=30)
    assert time.monotonic() - started < 2  # not the 30 s poll
    assert signal.slots == []  # disconnected again


@pytest.mark.asyncio
async def test_until_sees_a_state_that_lasts_only_during_an_event() -> None:
    events = Events()
    state = {"busy": True}

    def blip() -> None:
        state["busy"] = False
        events.send("idle for a moment")
        state["busy"] = True

    asyncio.get_running_loop().call_later(0.02, blip)
    await waits.until(lambda: not state["busy"], limit=5, every=None, subscribe=events.subscribe)
    assert state["busy"]  # it was seen at the event, not after
    assert events.listeners == []  # unsubscribed again


@pytest.mark.asyncio
async def test_until_on_events_alone_looks_only_when_an_event_comes() -> None:
    events = Events()
    ready = [False]
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, ready.__setitem__, 0, True)  # no event says so
    loop.call_later(0.3, events.send, "later")
    started = time.monotonic()
    await waits.until(lambda: ready[0], limit=5, every=None, subscribe=events.subscribe)
    assert time.monotonic() - started >= 0.25
    assert events.listeners == []


def test_wait_until_blocks_until_another_thread_gets_there() -> None:
    done = threading.Event()
    timer = threading.Timer(0.05, done.set)
    timer.start()
    try:
        waits.wait_until(done.is_set, limit=5, what="the timer")
    finally:
        timer.cancel()
    with pytest.raises(AssertionError, match="never"):
        waits.wait_until(lambda: False, limit=0.05, what="never")


@pytest.mark.asyncio
async def test_next_signal_gives_the_arguments_of_the_next_emission() -> None:
    signal = FakeSignal()
    asyncio.get_running_loop().call_later(0.01, signal.emit, 1, "two")
    assert await waits.next_signal(signal, limit=5) == (1, "two")
    assert signal.slots == []
    with pytest.raises(AssertionError, match="no signal"):
        await waits.next_signal(signal, limit=0.05)
    assert signal.slots == []


def test_make_desk_is_the_apps_desk_with_short_waits(tmp_path: Path) -> None:
    desk = make_desk(tmp_path / "home")
    assert desk.timing is FAST
    assert demo_emulator(desk).leads() == []
    assert desk.paths.log_file.exists()  # the app's logging, as build_desk sets it up
    slow = RetryTiming(backoff_base=7.0)
    without_demo = make_desk(tmp_path / "other", timing=slow, demo=False)
    assert without_demo.timing is slow
    assert without_demo.demo is None
    with pytest.raises(AssertionError, match="DemoPbx"):
        demo_emulator(without_demo)


@pytest.mark.asyncio
async def test_make_core_desk_delivers_to_its_emulator(tmp_path: Path) -> None:
    emulator = Emulator(min_service=0.0, jitter=0.0)
    layouts = {3: FieldLayout((field_spec("Name"), field_spec("FirstPhone", phone=True)))}
    desk = make_core_desk(tmp_path / "home", emulator=emulator, layouts=layouts)
    assert desk.timing is None
    desk.ensure_demo_profile()
    await desk.open("Demo")
    assert desk.layout_for(3) == layouts[3]
    try:
        lead = LeadInput({"Name": "A", "FirstPhone": "0370100001"}, frozenset({"+61370100001"}))
        await desk.enqueue(Target(3, 42, 101), [lead], allow_duplicates=False, source="test")
        await waits.until(lambda: len(emulator.leads()) == 1, limit=10, what="the lead")
    finally:
        await desk.close()
    assert emulator.leads()[0]["fields"]["Name"] == "A"
