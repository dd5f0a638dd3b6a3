"""The emulator over real HTTP/1.1 on 127.0.0.1: framing, keep-alive, drops, stop, down, thread."""

from __future__ import annotations

import asyncio
import json
import socket

import h11
import httpx
import pytest
import pytest_asyncio
from helpers.waits import until, wait_until

from noojee_desk.sim.emulator import API_PREFIX, Emulator
from noojee_desk.sim.server import SimServer, SimThread, is_loopback

INSERT = (
    API_PREFIX + "insertLeadFast?fTemplateId=3&fCampaignId=42&fAllocationId=101&apiKey=demo-key"
)
LEAD = {"Name": "Jane Smith", "FirstPhone": "0370101234"}


def _request(method: str, target: str, body: bytes = b"", **headers: str) -> list[h11.Event]:
    all_headers = [("Host", "127.0.0.1"), ("Content-Length", str(len(body)))]
    all_headers += [(k.replace("_", "-"), v) for k, v in headers.items()]
    events: list[h11.Event] = [h11.Request(method=method, target=target, headers=all_headers)]
    if body:
        events.append(h11.Data(data=body))
    events.append(h11.EndOfMessage())
    return events


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    client: h11.Connection,
    events: list[h11.Event],
) -> tuple[h11.Response, bytes]:
    for event in events:
        writer.write(client.send(event))
    await writer.drain()
    response = None
    body = b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(await asyncio.wait_for(reader.read(65536), 5))
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response, body
        elif isinstance(event, h11.ConnectionClosed):
            pytest.fail("the server closed the connection before answering")


@pytest_asyncio.fixture
async def server():
    emulator = Emulator(min_service=0.01, jitter=0.0)
    sim = SimServer(emulator)
    await sim.start()
    yield sim
    await sim.close()
    await emulator.aclose()


async def _refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return True
    writer.close()
    return False


@pytest.mark.asyncio
async def test_keep_alive_serves_many_requests_on_one_connection(server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    client = h11.Connection(h11.CLIENT)
    try:
        get = _request("GET", API_PREFIX + "getCampaignTemplateList?apiKey=demo-key")
        response, body = await _exchange(reader, writer, client, get)
        assert response.status_code == 200
        assert response.reason == b"OK"
        assert json.loads(body)["code"] == 0
        client.start_next_cycle()
        post = _request("POST", INSERT, json.dumps(LEAD).encode(), Content_Type="application/json")
        response, body = await _exchange(reader, writer, client, post)
        assert (response.status_code, json.loads(body)) == (200, {"code": 0, "message": "OK"})
        assert dict(response.headers)[b"content-length"] == str(len(body)).encode()
        client.start_next_cycle()
        response, body = await _exchange(reader, writer, client, _request("GET", "/nowhere"))
        assert response.status_code == 404
        assert body.startswith(b"<!doctype html>")
    finally:
        writer.close()
    assert server.emulator.state()["lead_count"] == 1


@pytest.mark.asyncio
async def test_connection_close_is_honoured(server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    client = h11.Connection(h11.CLIENT)
    get = _request(
        "GET", API_PREFIX + "getCampaignTemplateList?apiKey=demo-key", Connection="close"
    )
    response, _ = await _exchange(reader, writer, client, get)
    assert response.status_code == 200
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


@pytest.mark.asyncio
async def test_a_drop_sends_not_one_byte(server) -> None:
    server.emulator.drop_rate = 1.0
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    client = h11.Connection(h11.CLIENT)
    post = _request("POST", INSERT, json.dumps(LEAD).encode(), Content_Type="application/json")
    for event in post:
        writer.write(client.send(event))
    await writer.drain()
    try:
        received = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        received = b""
    writer.close()
    assert received == b""
    assert server.emulator.state()["lead_count"] == 1


@pytest.mark.asyncio
async def test_garbage_gets_a_400_page(server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"HELLO THERE\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"<!doctype html>" in answer


@pytest.mark.asyncio
async def test_a_huge_body_gets_413(server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            INSERT, content=b"x" * ((1 << 20) + 1), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert server.emulator.state()["lead_count"] == 0


@pytest.mark.asyncio
async def test_stop_and_start_keep_port_and_state(server) -> None:
    url = server.url
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post(INSERT, json=LEAD)).json()["code"] == 0
    await server.stop()
    assert not server.listening
    assert await _refused(url)
    async with httpx.AsyncClient(base_url=url) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(INSERT, json=LEAD)
    await server.start()
    assert server.url == url
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post(INSERT, json=LEAD)).json()["code"] == 105
    assert server.emulator.state()["lead_count"] == 1


@pytest.mark.asyncio
async def test_down_closes_the_port_until_it_is_up_again(server) -> None:
    url = server.url
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post(INSERT, json=LEAD)).json()["code"] == 0
        server.emulator.set_down(True)
        await until(lambda: _refused(url))
        with pytest.raises(httpx.ConnectError):
            await client.get("/__sim/state")
        server.emulator.set_down(False)
        await until(lambda: _not(_refused(url)))
        assert (await client.post(INSERT, json=LEAD)).json()["code"] == 105


@pytest.mark.asyncio
async def test_down_for_a_while_through_the_control_route(server) -> None:
    url = server.url
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/__sim/faults", json={"down_seconds": 0.3})
        assert response.status_code == 200
        assert response.json()["faults"]["down"] is True
        await until(lambda: _refused(url))
        await until(lambda: _not(_refused(url)))
        state = (await client.get("/__sim/state")).json()
        assert state["faults"]["down"] is False


async def _not(awaitable) -> bool:
    return not await awaitable


def test_only_loopback_unless_asked() -> None:
    emulator = Emulator()
    with pytest.raises(ValueError, match="only listens on this computer"):
        SimServer(emulator, host="0.0.0.0")
    SimServer(emulator, host="0.0.0.0", allow_remote=True)
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("192.168.1.10")
    assert not is_loopback("pbx.example.com")


def test_sim_thread() -> None:
    with SimThread(min_service=0.01, jitter=0.0) as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=sim.url) as client:
            assert client.post(INSERT, json=LEAD).json()["code"] == 0
            sim.set_faults(failure_rate=1.0)
            assert client.post(INSERT, json=LEAD).json()["code"] == 103
            sim.reset()
            assert sim.state()["lead_count"] == 0
            sim.set_key("other")
            assert client.post(INSERT, json=LEAD).status_code == 403
            sim.set_key("demo-key")
            assert client.post(INSERT, json=LEAD).json()["code"] == 0
            sim.start_import(60)
            assert client.post(INSERT, json=LEAD).status_code == 500
            sim.start_import(0)
        url = sim.url
        sim.stop_server()
        assert not sim.listening()
        with httpx.Client(base_url=url) as client, pytest.raises(httpx.ConnectError):
            client.get("/__sim/state")
        sim.start_server()
        assert sim.url == url
        sim.set_down(True, seconds=0.2)
        wait_until(lambda: not sim.listening(), what="the port to close")
        wait_until(lambda: sim.listening(), what="the port to reopen")
        with httpx.Client(base_url=url) as client:
            assert client.get("/__sim/state").json()["lead_count"] == 1
    assert sim.emulator.state()["lead_count"] == 1
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) != 0


def test_sim_thread_reports_a_port_in_use() -> None:
    with SimThread() as first:
        port = int(first.url.rsplit(":", 1)[1])
        second = SimThread(port=port)
        with pytest.raises(OSError, match=r"(?i)in use|only one usage"):
            second.start()
