"""The API client against the emulator over real HTTP on 127.0.0.1: every Outcome and code."""

from __future__ import annotations

import asyncio
import importlib.abc
import logging
import socket
import sys
from collections.abc import Iterator

import pytest

from noojee_desk.core.delivery.api import ApiError, NoojeeClient
from noojee_desk.core.delivery.outcome import BlockReason, Kind, RetryReason
from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.server import SimThread

T, C, A = 3, 42, 101  # Home Loans / Refinance Q1 / January list


def lead(phone: str = "0370101234", **extra: str) -> dict[str, str]:
    return {"Name": "Jane Smith", "City": "Abbotsford", "FirstPhone": phone, **extra}


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(min_service=0.01, jitter=0.0) as server:
        yield server


@pytest.mark.asyncio
async def test_lists_over_http(sim: SimThread) -> None:
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        templates = await client.list_templates()
        campaigns = await client.list_campaigns(T)
        allocations = await client.list_allocations(C)
    assert (T, "Home Loans") in [(c.id, c.name) for c in templates]
    assert {c.id for c in campaigns} == {42, 44, 47}
    assert A in {a.id for a in allocations}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (lead(Name="<NO CHANGE>"), 108),
        (lead(phone=""), 102),
        (lead(njContactHours="Lunchtime"), 111),
        (lead(phone="02 9999 9999"), 104),
    ],
)
async def test_each_rejection_code(sim: SimThread, fields: dict[str, str], code: int) -> None:
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        outcome = await client.insert_lead(T, C, A, fields)
    assert outcome.kind is Kind.REJECTED
    assert outcome.code == code
    assert outcome.sentence
    assert outcome.fix
    assert outcome.http_status == 400


@pytest.mark.asyncio
async def test_delivered_then_duplicate_then_allowed(sim: SimThread) -> None:
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        first = await client.insert_lead(T, C, A, lead(njExternalLeadId="x-1"))
        same_id = await client.insert_lead(T, C, A, lead("0370109999", njExternalLeadId="x-1"))
        same_phone = await client.insert_lead(T, C, A, lead(njExternalLeadId="x-2"))
        allowed = await client.insert_lead(
            T, C, A, lead(njExternalLeadId="x-3"), allow_duplicates=True
        )
    assert first.kind is Kind.DELIVERED
    assert first.latency > 0
    assert (same_id.kind, same_id.code) == (Kind.REJECTED, 112)
    assert (same_phone.kind, same_phone.code) == (Kind.REJECTED, 105)
    assert allowed.kind is Kind.DELIVERED
    inserted = sim.state()["leads"]
    assert sorted(x["external_id"] for x in inserted) == ["x-1", "x-3"]


class _ImportSearches(importlib.abc.MetaPathFinder):
    """A meta path finder that finds nothing and notes each module the import system looks for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.append(name)


@pytest.mark.asyncio
async def test_a_call_does_not_search_for_modules(sim: SimThread) -> None:
    # httpcore imports sniffio several times a request to learn which event loop runs. When
    # sniffio was not installed, each of those imports searched sys.path, and a busy sender
    # spent a quarter of its CPU time there (see sniffio in pyproject.toml).
    searches = _ImportSearches()
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        await client.insert_lead(T, C, A, lead())  # the first call may import what it needs
        sys.meta_path.insert(0, searches)
        try:
            for n in range(3):
                await client.insert_lead(T, C, A, lead(f"037010{n:04d}"))
        finally:
            sys.meta_path.remove(searches)
    assert searches.names == []


@pytest.mark.asyncio
async def test_an_answer_tells_the_time_it_spent_away_from_us() -> None:
    """``on_wire``: from the request written to the answer's headers read; the server's 0.1 s
    is in it, our own work (a new connection, writing, reading the answer) is not."""
    with SimThread(min_service=0.1, jitter=0.0) as server:
        async with NoojeeClient(server.url, DEMO_API_KEY) as client:
            first = await client.insert_lead(T, C, A, lead(njExternalLeadId="w-1"))
            again = await client.insert_lead(T, C, A, lead("0370109999", njExternalLeadId="w-2"))
            listed = await client.probe()
        async with NoojeeClient("http://127.0.0.1:9", DEMO_API_KEY) as nobody:
            refused = await nobody.insert_lead(T, C, A, lead())
    for outcome in (first, again):
        assert outcome.kind is Kind.DELIVERED
        assert outcome.on_wire is not None
        assert 0.1 <= outcome.on_wire < outcome.latency
    assert listed.on_wire is not None
    assert refused.on_wire is None  # never on the wire


@pytest.mark.asyncio
async def test_server_failure_is_retry_later(sim: SimThread) -> None:
    sim.set_faults(failure_rate=1.0)
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        outcome = await client.insert_lead(T, C, A, lead())
    assert (outcome.kind, outcome.code) == (Kind.RETRY_LATER, 103)
    assert outcome.retry_reason is RetryReason.SERVER_ERROR
    assert sim.state()["leads"] == []


@pytest.mark.asyncio
async def test_queue_timeout_is_109_busy() -> None:
    with SimThread(capacity=1, min_service=0.4, jitter=0.0, queue_timeout=0.1) as sim:
        async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
            outcomes = await asyncio.gather(
                client.insert_lead(T, C, A, lead("0370100001")),
                client.insert_lead(T, C, A, lead("0370100002")),
            )
    codes = sorted(o.code for o in outcomes)
    assert codes == [0, 109]
    busy = next(o for o in outcomes if o.code == 109)
    assert busy.kind is Kind.RETRY_LATER
    assert busy.retry_reason is RetryReason.BUSY
    assert busy.retry_after is None  # only a real Retry-After header sets a wait


@pytest.mark.asyncio
async def test_dropped_connection_after_insert_is_unknown(sim: SimThread) -> None:
    sim.set_faults(drop_rate=1.0)
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        outcome = await client.insert_lead(T, C, A, lead(njExternalLeadId="drop-1"))
    assert outcome.kind is Kind.UNKNOWN
    assert [x["external_id"] for x in sim.state()["leads"]] == ["drop-1"]
    sim.set_faults(drop_rate=0.0)
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        retry = await client.insert_lead(T, C, A, lead(njExternalLeadId="drop-1"))
    assert retry.code == 112  # the dispatcher reads this as "it had landed"


@pytest.mark.asyncio
async def test_wrong_key_is_blocked_with_html_403(sim: SimThread) -> None:
    async with NoojeeClient(sim.url, "not-the-key") as client:
        outcome = await client.insert_lead(T, C, A, lead())
        with pytest.raises(ApiError) as info:
            await client.list_templates()
    assert outcome.kind is Kind.BLOCKED
    assert outcome.block_reason is BlockReason.KEY_REJECTED
    assert outcome.http_status == 403
    assert info.value.outcome.block_reason is BlockReason.KEY_REJECTED


@pytest.mark.asyncio
async def test_wrong_path_is_blocked_with_html_404(sim: SimThread) -> None:
    async with NoojeeClient(sim.url + "/pbx", DEMO_API_KEY) as client:
        outcome = await client.insert_lead(T, C, A, lead())
    assert outcome.kind is Kind.BLOCKED
    assert outcome.block_reason is BlockReason.WRONG_URL
    assert outcome.http_status == 404


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.asyncio
async def test_connection_refused_is_offline_retry() -> None:
    async with NoojeeClient(f"http://127.0.0.1:{_closed_port()}", DEMO_API_KEY) as client:
        outcome = await client.insert_lead(T, C, A, lead())
        with pytest.raises(ApiError) as info:
            await client.list_templates()
    assert outcome.kind is Kind.RETRY_LATER
    assert outcome.retry_reason is RetryReason.OFFLINE
    assert info.value.outcome.retry_reason is RetryReason.OFFLINE


@pytest.mark.asyncio
async def test_a_refused_first_connection_names_the_host_and_port_to_check() -> None:
    port = _closed_port()
    async with NoojeeClient(f"http://127.0.0.1:{port}", DEMO_API_KEY) as client:
        with pytest.raises(ApiError) as info:
            await client.list_templates()
    outcome = info.value.outcome
    assert outcome.kind is Kind.RETRY_LATER  # a queue still waits for it
    assert f"127.0.0.1, port {port}" in (outcome.sentence or "")
    assert "refused" in (outcome.sentence or "")
    assert "Check the server address and port" in (outcome.fix or "")
    assert "Nothing to do" not in (outcome.fix or "")


@pytest.mark.asyncio
async def test_a_refused_connection_after_the_pbx_answered_keeps_the_queue_wording() -> None:
    with SimThread(min_service=0.01, jitter=0.0) as server:
        client = NoojeeClient(server.url, DEMO_API_KEY)
        await client.list_templates()
    try:
        outcome = await client.insert_lead(T, C, A, lead())
        for _ in range(3):  # a pooled connection may first report the server going away
            if outcome.retry_reason is RetryReason.OFFLINE and outcome.kind is Kind.RETRY_LATER:
                break
            outcome = await client.insert_lead(T, C, A, lead())
    finally:
        await client.aclose()
    assert outcome.retry_reason is RetryReason.OFFLINE
    assert "ConnectError" in outcome.message
    assert outcome.fix == "Nothing to do: leads stay queued and are sent when it is back."
    assert "port" not in (outcome.sentence or "")


@pytest.mark.asyncio
async def test_unknown_host_is_blocked() -> None:
    async with NoojeeClient("https://no-such-pbx.invalid", DEMO_API_KEY) as client:
        outcome = await client.insert_lead(T, C, A, lead())
    assert outcome.kind is Kind.BLOCKED
    assert outcome.block_reason is BlockReason.UNKNOWN_HOST


@pytest.mark.asyncio
async def test_the_key_never_appears_in_logs_errors_or_reprs(
    sim: SimThread, caplog: pytest.LogCaptureFixture
) -> None:
    key = "Sup3r-Secret-Key-42"
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    for name in ("httpx", "httpcore", "noojee_desk"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    texts: list[str] = []
    sim.set_key(key)
    async with NoojeeClient(sim.url, key) as client:
        texts.append(repr(client))
        texts.extend(repr(c) for c in await client.list_templates())
        texts.append(repr(await client.insert_lead(T, C, A, lead())))
        texts.append(repr(await client.insert_lead(T, C, A, lead(phone=""))))
        sim.set_faults(drop_rate=1.0)
        texts.append(repr(await client.insert_lead(T, C, A, lead("0370100003"))))
        sim.set_faults(drop_rate=0.0)
    sim.set_key("rotated")
    async with NoojeeClient(sim.url, key) as client:
        texts.append(repr(await client.insert_lead(T, C, A, lead("0370100004"))))
        with pytest.raises(ApiError) as info:
            await client.list_campaigns(T)
        texts.extend([str(info.value), repr(info.value.outcome)])
    async with NoojeeClient(f"http://127.0.0.1:{_closed_port()}", key) as client:
        texts.append(repr(await client.insert_lead(T, C, A, lead())))
        with pytest.raises(ApiError) as info:
            await client.list_allocations(C)
        texts.extend([str(info.value), repr(info.value.outcome)])

    records = caplog.records
    assert any(r.name.startswith("httpx") for r in records), "httpx logged nothing: test is blind"
    assert any("apiKey" in r.getMessage() or "CampaignAPI" in r.getMessage() for r in records)
    for record in records:
        assert key not in record.getMessage(), record.name
        assert key not in (record.exc_text or "")
    for text in texts:
        assert key not in text
