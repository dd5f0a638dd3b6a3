"""A template's fields from the PBX: both calls, an old PBX without them, garbage, no answer."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from noojee_desk.core.delivery.api import ApiError, FieldDefn, NoojeeClient
from noojee_desk.core.delivery.outcome import Kind
from noojee_desk.sim.emulator import Emulator
from noojee_desk.sim.server import SimServer

SUPER = 15  # the emulator's template in a live PBX's snake-case style


@pytest.mark.asyncio
async def test_fields_come_from_getfielddefn_with_labels_and_required(
    pbx: tuple[Emulator, SimServer],
) -> None:
    _, server = pbx
    async with NoojeeClient(server.url, "demo-key") as client:
        fields = await client.template_fields(SUPER)
        home = await client.template_fields(3)
    assert fields is not None
    keys = [f.key for f in fields]
    assert keys[:4] == ["address_1", "Best_Contact_Time", "email", "name_first"]
    assert "phone" in keys
    assert home is not None
    assert (home[0].key, home[0].required) == ("Name", True)
    assert [f.required for f in home if f.key == "FirstPhone"] == [True]


@pytest.mark.asyncio
async def test_an_old_pbx_without_field_calls_means_none(
    pbx: tuple[Emulator, SimServer],
) -> None:
    emulator, server = pbx
    emulator.field_calls = False
    async with NoojeeClient(server.url, "demo-key") as client:
        assert await client.template_fields(SUPER) is None
        # The rest of the API still works: this is no wrong address.
        assert [c.id for c in await client.list_templates()]


def _transport(answers: dict[str, httpx.Response]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        return answers.get(method, httpx.Response(404, text="<html>Not Found</html>"))

    return httpx.MockTransport(answer)


@pytest.mark.asyncio
async def test_getfieldlist_is_the_fallback_with_names_only() -> None:
    listed = {"code": 0, "message": "OK", "entities": [{"id": 1, "name": "phone"}, {"id": 2}]}
    transport = _transport({"getFieldList": httpx.Response(200, json=listed)})
    async with NoojeeClient("http://127.0.0.1:9", "k", transport=transport) as client:
        assert await client.template_fields(7) == [FieldDefn("phone")]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<!doctype html><title>Login</title>"),
        httpx.Response(200, content=b"\x00\xff garbage"),
        httpx.Response(200, json={"unexpected": "shape"}),
        httpx.Response(200, json=[1, "two", {"no_key": True}]),
        httpx.Response(302, headers={"Location": "https://sso.example/"}),
    ],
)
@pytest.mark.asyncio
async def test_garbage_or_a_web_page_means_no_field_calls(answer: httpx.Response) -> None:
    transport = _transport({"getFieldDefn": answer, "getFieldList": answer})
    async with NoojeeClient("http://127.0.0.1:9", "k", transport=transport) as client:
        assert await client.template_fields(7) is None


@pytest.mark.asyncio
async def test_no_answer_is_an_api_error_not_a_missing_call() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()  # takes the request, never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with NoojeeClient(f"http://127.0.0.1:{port}", "k", list_timeout=0.2) as client:
            with pytest.raises(ApiError) as caught:
                await asyncio.wait_for(client.template_fields(7), 5)
    finally:
        release.set()
        server.close()
        await server.wait_closed()
    assert caught.value.outcome.kind in (Kind.UNKNOWN, Kind.RETRY_LATER)


@pytest.mark.asyncio
async def test_a_refused_connection_is_an_api_error() -> None:
    async with NoojeeClient("http://127.0.0.1:9", "k") as client:
        with pytest.raises(ApiError) as caught:
            await client.template_fields(7)
    assert caught.value.outcome.kind is Kind.RETRY_LATER


@pytest.mark.asyncio
async def test_an_empty_field_list_is_no_answer_and_never_replaces_a_layout() -> None:
    empty = {"getFieldDefn": httpx.Response(200, json=[])}
    async with NoojeeClient("http://127.0.0.1:9", "k", transport=_transport(empty)) as client:
        assert await client.template_fields(7) is None
