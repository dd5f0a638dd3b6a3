"""Fixtures for the emulator tests: one emulator reached in-process or over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.emulator import API_PREFIX, Emulator
from noojee_desk.sim.server import SimServer


class Pbx:
    """A test's view of the emulator: the httpx client that reaches it, and short-hands."""

    def __init__(self, mode: str, emulator: Emulator, client: httpx.AsyncClient) -> None:
        self.mode = mode
        self.emulator = emulator
        self.client = client
        self.server: SimServer | None = None

    async def get(self, method: str, **params: Any) -> httpx.Response:
        params.setdefault("apiKey", DEMO_API_KEY)
        return await self.client.get(API_PREFIX + method, params=params)

    async def insert(
        self,
        fields: Any,
        *,
        template: Any = 3,
        campaign: Any = 42,
        allocation: Any = 101,
        key: str | None = DEMO_API_KEY,
        allow_duplicates: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        params = {"fTemplateId": template, "fCampaignId": campaign, "fAllocationId": allocation}
        params = {k: v for k, v in params.items() if v is not None}
        if key is not None:
            params["apiKey"] = key
        if allow_duplicates:
            params["allowDuplicates"] = "true"
        if "content" not in kwargs:
            kwargs["json"] = fields
        return await self.client.post(API_PREFIX + "insertLeadFast", params=params, **kwargs)


def home_lead(phone: str = "0370101234", **extra: str) -> dict[str, str]:
    """A valid lead for template 3 (Home Loans)."""
    lead = {
        "Name": "Jane Smith",
        "StreetAddress": "Suite 8/10 Hoddle St",
        "City": "Abbotsford",
        "State": "Vic",
        "PostCode": "3067",
        "FirstPhone": phone,
    }
    lead.update(extra)
    return lead


@pytest.fixture
def lead() -> Callable[..., dict[str, str]]:
    return home_lead


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(min_service=0.01, jitter=0.0, seed=7)


@pytest_asyncio.fixture(params=["in-process", "http"])
async def pbx(request: pytest.FixtureRequest, emulator: Emulator) -> AsyncIterator[Pbx]:
    """The emulator reached through ``emulator.transport()`` or over real HTTP (SimServer)."""
    if request.param == "in-process":
        async with httpx.AsyncClient(
            transport=emulator.transport(), base_url="http://pbx.test"
        ) as client:
            yield Pbx("in-process", emulator, client)
    else:
        server = SimServer(emulator)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                pbx = Pbx("http", emulator, client)
                pbx.server = server
                yield pbx
        finally:
            await server.close()
    await emulator.aclose()
