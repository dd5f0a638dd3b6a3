"""Delivery tests' fixtures: a queue file and dispatcher harnesses that stop after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from helpers.dispatch import FakeClient, Harness
from helpers.simproc import sim_factory  # noqa: F401 - the emulator process fixture

from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.sim.emulator import Emulator
from noojee_desk.sim.server import SimServer


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3")
    yield box
    box.close()


@pytest_asyncio.fixture
async def make(outbox: Outbox) -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def factory(client: FakeClient | NoojeeClient, **kwargs: object) -> Harness:
        harness = Harness(outbox, client, **kwargs)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        await harness.stop()


@pytest_asyncio.fixture
async def pbx() -> AsyncIterator[tuple[Emulator, SimServer]]:
    """The emulator served over HTTP on 127.0.0.1 (capacity 4, about 10 ms a call)."""
    emulator = Emulator(capacity=4, min_service=0.01, jitter=0.002, seed=11)
    server = SimServer(emulator)
    await server.start()
    try:
        yield emulator, server
    finally:
        await server.close()
        await emulator.aclose()
