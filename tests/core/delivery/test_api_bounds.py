"""Answers that never end, trickle, nest too deep or list too much: each a clear Outcome."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from noojee_desk.core.delivery import api
from noojee_desk.core.delivery.api import ApiError, NoojeeClient
from noojee_desk.core.delivery.outcome import BlockReason, Kind, RetryReason
from noojee_desk.core.profiles import choices
from noojee_desk.core.profiles.settings import Profile

KEY = "k3y-SECRET-value"
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, **kwargs: float) -> NoojeeClient:
    transport = httpx.MockTransport(handler)
    return NoojeeClient("https://pbx.example.com", KEY, transport=transport, **kwargs)


async def insert_with(handler: Handler, **kwargs: float):
    async with client_for(handler, **kwargs) as client:
        return await client.insert_lead(3, 42, 5, {"Name": "Jo", "FirstPhone": "0383218199"})


class Endless(httpx.AsyncByteStream):
    """A body that never ends; counts what was taken from it."""

    def __init__(self, chunk: bytes = b"x" * 65536, pause: float = 0.0) -> None:
        self.chunk = chunk
        self.pause = pause
        self.taken = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            if self.pause:
                await asyncio.sleep(self.pause)
            self.taken += len(self.chunk)
            yield self.chunk

    async def aclose(self) -> None:
        self.closed = True


def endless(status: int, stream: Endless, content_type: str = "application/json") -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, stream=stream)

    return handler


@pytest.mark.asyncio
async def test_an_insert_answer_that_never_ends_is_unknown_and_read_only_to_its_limit() -> None:
    stream = Endless()
    outcome = await insert_with(endless(200, stream))
    assert outcome.kind is Kind.UNKNOWN
    assert "longer than 64 KB" in outcome.sentence
    assert "may or may not" in outcome.sentence
    assert stream.taken <= api.MAX_INSERT_ANSWER + 65536
    assert stream.closed
    assert len(outcome.message) <= api.MAX_MESSAGE


@pytest.mark.asyncio
async def test_a_list_answer_that_never_ends_is_retry_later_naming_the_limit() -> None:
    stream = Endless()
    async with client_for(endless(200, stream)) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_templates()
    assert caught.value.outcome.kind is Kind.RETRY_LATER
    assert "longer than 8 MB" in caught.value.outcome.sentence
    assert stream.taken <= api.MAX_LIST_ANSWER + 65536


@pytest.mark.asyncio
async def test_an_endless_refusal_still_says_what_the_status_says() -> None:
    outcome = await insert_with(endless(401, Endless(), "text/html"))
    assert outcome.block_reason is BlockReason.KEY_REJECTED
    outcome = await insert_with(endless(503, Endless(), "text/html"))
    assert outcome.retry_reason is RetryReason.MAINTENANCE


@pytest.mark.asyncio
async def test_a_whole_answer_padded_past_the_limit_is_never_trusted() -> None:
    """Its start is a complete ``code 0``; the rest was never read, so it is no delivery."""
    body = b'{"code": 0, "message": "OK"}' + b" " * (api.MAX_INSERT_ANSWER + 10)

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    outcome = await insert_with(handler)
    assert outcome.kind is Kind.UNKNOWN


@pytest.mark.asyncio
async def test_an_answer_just_within_the_limit_is_read() -> None:
    body = b'{"code": 0, "message": "OK"}' + b" " * (api.MAX_INSERT_ANSWER - 40)
    assert len(body) <= api.MAX_INSERT_ANSWER

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    assert (await insert_with(handler)).kind is Kind.DELIVERED


@pytest.mark.asyncio
async def test_a_trickling_answer_ends_at_the_call_deadline() -> None:
    """Each byte comes well within the read timeout; the call as a whole has a deadline."""
    stream = Endless(b" ", pause=0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await insert_with(endless(200, stream), deadline=0.5)
    assert loop.time() - started < 3
    assert outcome.kind is Kind.UNKNOWN
    assert "within 0.5 seconds" in outcome.sentence
    assert stream.closed

    async with client_for(endless(200, Endless(b" ", pause=0.02)), deadline=0.5) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_campaigns(3)
    assert caught.value.outcome.kind is Kind.RETRY_LATER
    assert "within 0.5 seconds" in caught.value.outcome.sentence


def test_the_deadline_waits_past_the_pbx_queue() -> None:
    assert api.CALL_DEADLINE > 60 + 30
    assert api.CALL_DEADLINE > api.READ_TIMEOUT


def listing(body: bytes) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return handler


@pytest.mark.asyncio
async def test_ids_out_of_range_are_skipped_never_raised() -> None:
    entities = (
        '[{"id": 1e400, "name": "inf"}, {"id": "' + "9" * 5000 + '", "name": "long"},'
        ' {"id": true, "name": "bool"}, {"id": -1, "name": "neg"}, {"id": 1e300},'
        ' {"id": 18446744073709551616}, {"id": "12", "name": "twelve"}, {"id": 7.0},'
        ' {"id": 7.5}, {"id": null}, {"id": [1]}, {"name": "none"}, {"id": "\u0663"},'
        ' {"id": 5, "name": {"nested": 1}}]'
    )
    body = ('{"code": 0, "entities": ' + entities + "}").encode()
    async with client_for(listing(body)) as client:
        found = await client.list_templates()
    assert [(c.id, c.name) for c in found] == [(12, "twelve"), (7, "7"), (5, "5")]
    assert found.note == ""


@pytest.mark.asyncio
async def test_a_5000_digit_id_number_is_an_unreadable_answer_not_a_crash() -> None:
    body = ('{"code": 0, "entities": [{"id": ' + "9" * 5000 + "}]}").encode()
    async with client_for(listing(body)) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_templates()
    assert caught.value.outcome.kind is Kind.UNKNOWN
    # a list carries no lead: its message speaks of the answer, never of a lead added
    assert caught.value.outcome.sentence.startswith("The server's answer could not be read")
    assert "lead" not in caught.value.outcome.sentence + caught.value.outcome.fix


@pytest.mark.asyncio
async def test_a_list_is_cut_at_the_cap_with_a_note_naming_it(tmp_path) -> None:
    many = [{"id": i, "name": f"C{i}"} for i in range(1, api.MAX_CHOICES + 500)]
    body = json.dumps({"code": 0, "entities": many}).encode()
    async with client_for(listing(body)) as client:
        found = await client.list_campaigns(3)
        assert len(found) == api.MAX_CHOICES
        assert f"{api.MAX_CHOICES:,}" in found.note
        loaded = await choices.load(client, Profile("p"), "campaigns", 3)
    assert len(loaded.items) == api.MAX_CHOICES
    assert f"{api.MAX_CHOICES:,}" in loaded.note


@pytest.mark.asyncio
@pytest.mark.parametrize("depth", [10_000, 200_000])
async def test_json_nested_too_deep_is_an_unreadable_answer(depth: int) -> None:
    body = b'{"code": 0, "entities": ' + b"[" * depth + b"]" * depth + b"}"

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    async with client_for(handler) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_templates()
        assert caught.value.outcome.kind is Kind.UNKNOWN
        assert await client.template_fields(3) is None
    small = b"[" * 20_000 + b"]" * 20_000
    outcome = await insert_with(listing(small))
    assert outcome.kind is Kind.UNKNOWN


def _bomb(size: int = 64 * 1024 * 1024) -> bytes:
    """A gzip body of some 64 KB whose content is ``size`` bytes of one JSON string."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [inner.compress(b'{"code": 0, "message": "')]
    block = b"x" * (1024 * 1024)
    parts.extend(inner.compress(block) for _ in range(size // len(block)))
    parts.append(inner.flush())
    return b"".join(parts)


BOMB = _bomb()


class Chunks(httpx.AsyncByteStream):
    """A body streamed as the network gives it: in chunks of 64 KB."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 65536):
            yield self.body[start : start + 65536]


def compressed(body: bytes, encoding: str) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": encoding}
        return httpx.Response(200, headers=headers, stream=Chunks(body))

    return handler


@pytest.mark.asyncio
async def test_a_gzip_bomb_is_inflated_only_to_the_limit() -> None:
    """64 KB on the wire, 64 MB inflated: the answer is cut at 64 KB as it is inflated."""
    assert len(BOMB) < 100_000
    tracemalloc.start()
    try:
        outcome = await insert_with(compressed(BOMB, "gzip"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.kind is Kind.UNKNOWN
    assert "longer than 64 KB" in outcome.sentence
    assert peak < 4 * 1024 * 1024, peak


@pytest.mark.asyncio
async def test_a_gzip_bomb_list_answer_is_cut_at_8_mb_in_bounded_memory() -> None:
    double = gzip.compress(BOMB)  # two codings: each inflated a piece at a time
    tracemalloc.start()
    try:
        async with client_for(compressed(double, "gzip, gzip")) as client:
            with pytest.raises(ApiError) as caught:
                await client.list_templates()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "longer than 8 MB" in caught.value.outcome.sentence
    assert peak < 48 * 1024 * 1024, peak  # inflated whole, over 140 MB


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # a zlib stream
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # a raw deflate stream
        ("gzip, deflate", lambda data: zlib.compress(gzip.compress(data))),
        ("identity", lambda data: data),
    ],
)
async def test_compressed_answers_within_the_limit_are_read(encoding: str, pack) -> None:
    body = b'{"code": 0, "message": "' + b"y" * (api.MAX_INSERT_ANSWER - 100) + b'"}'
    outcome = await insert_with(compressed(pack(body), encoding))
    assert outcome.kind is Kind.DELIVERED, outcome


@pytest.mark.asyncio
async def test_a_broken_gzip_answer_is_a_defined_outcome_and_the_client_asks_for_gzip_only() -> (
    None
):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding", ""))
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, stream=Chunks(b"not gzip at all"))

    outcome = await insert_with(handler)
    assert outcome.kind is Kind.UNKNOWN
    assert seen == ["gzip, deflate"]
