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
