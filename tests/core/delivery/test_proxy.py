"""Proxies: the system's (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) and a connection's own,
checked against a small proxy on 127.0.0.1 that records every byte it is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from noojee_desk.core.delivery.api import (
    ApiError,
    ConfigError,
    NoojeeClient,
    check_proxy,
    proxy_for,
)
from noojee_desk.core.delivery.outcome import BlockReason, Kind
from noojee_desk.core.delivery.policy import Step, rule_for
from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.server import SimThread

KEY = "s3cret-proxy-test-key-0042"
VARIABLES = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")


class RecordingProxy:
    """An HTTP proxy that refuses every CONNECT (so no tunnel is made) and forwards plain
    requests in absolute form to their host, one request a connection. ``seen`` holds what
    each client sent before the answer (request line, headers, body)."""

    def __init__(self, connect_answer: bytes = b"403 Forbidden") -> None:
        self.connect_answer = connect_answer
        self.seen: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    @property
    def request_lines(self) -> list[str]:
        return [raw.split(b"\r\n", 1)[0].decode("latin-1") for raw in self.seen]

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            self.seen.append(head + body)
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            if method == b"CONNECT":
                writer.write(
                    b"HTTP/1.1 " + self.connect_answer + b"\r\n"
                    b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
                )
            else:
                writer.write(await self._forward(method, target, head, body))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def _forward(self, method: bytes, target: bytes, head: bytes, body: bytes) -> bytes:
        rest = target.split(b"://", 1)[1]
        hostport, _, path = rest.partition(b"/")
        host, _, port = hostport.partition(b":")
        headers = [
            line
            for line in head.split(b"\r\n")[1:]
            if line and not line.lower().startswith((b"connection:", b"proxy-"))
        ]
        upstream_reader, upstream = await asyncio.open_connection(host.decode(), int(port or 80))
        upstream.write(
            b"\r\n".join([method + b" /" + path + b" HTTP/1.1", *headers, b"Connection: close"])
            + b"\r\n\r\n"
            + body
        )
        await upstream.drain()
        answer = await upstream_reader.read()
        upstream.close()
        # One request a connection: the client must not keep this one open.
        status, _, rest_of = answer.partition(b"\r\n")
        return status + b"\r\nConnection: close\r\n" + rest_of


@pytest.fixture(autouse=True)
def no_system_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[RecordingProxy]:
    made = RecordingProxy()
    await made.start()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(min_service=0.0, jitter=0.0) as server:
        yield server


@pytest.mark.asyncio
async def test_an_https_pbx_through_the_system_proxy_is_a_connect_tunnel_the_key_never_seen(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    async with NoojeeClient("https://pbx.example.com", KEY) as client:
        outcome = await client.probe()
    assert proxy.request_lines == ["CONNECT pbx.example.com:443 HTTP/1.1"]
    assert all(KEY.encode() not in raw and b"apiKey" not in raw for raw in proxy.seen)
    assert outcome.kind is not Kind.DELIVERED  # the tunnel was refused: no PBX was reached


@pytest.mark.asyncio
async def test_the_connections_own_proxy_is_used_without_any_system_proxy(
    proxy: RecordingProxy,
) -> None:
    port = proxy.url.rsplit(":", 1)[1]
    async with NoojeeClient(
        "https://pbx.example.com:8443", KEY, proxy=f"127.0.0.1:{port}"
    ) as client:
        await client.probe()
    assert proxy.request_lines == ["CONNECT pbx.example.com:8443 HTTP/1.1"]
    assert all(KEY.encode() not in raw for raw in proxy.seen)


@pytest.mark.asyncio
async def test_all_proxy_is_used_when_no_proxy_for_the_scheme_is_set(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("all_proxy", proxy.url)
    async with NoojeeClient("https://pbx.example.com", KEY) as client:
        await client.probe()
    assert proxy.request_lines == ["CONNECT pbx.example.com:443 HTTP/1.1"]


@pytest.mark.asyncio
@pytest.mark.parametrize("configured", ["", "own"])
async def test_plain_http_never_goes_through_a_proxy_the_key_would_travel_in_clear(
    proxy: RecordingProxy, sim: SimThread, monkeypatch: pytest.MonkeyPatch, configured: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    own = proxy.url if configured else ""
    async with NoojeeClient(sim.url, DEMO_API_KEY, proxy=own) as client:
        templates = await client.list_templates()
    assert (3, "Home Loans") in [(c.id, c.name) for c in templates]
    assert proxy.seen == []  # straight to this computer's emulator


@pytest.mark.asyncio
@pytest.mark.parametrize("bypass", ["127.0.0.1", "localhost,127.0.0.1", "*"])
async def test_no_proxy_names_hosts_reached_directly(
    proxy: RecordingProxy, sim: SimThread, monkeypatch: pytest.MonkeyPatch, bypass: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", bypass)
    async with NoojeeClient(sim.url, DEMO_API_KEY) as client:
        templates = await client.list_templates()
    assert templates
    assert proxy.seen == []


def test_which_proxy_a_server_address_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert proxy_for("https://pbx.example.com/x/") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.corp:8080")
    monkeypatch.setenv("NO_PROXY", ".internal.example,10.1.2.3")
    assert proxy_for("https://pbx.example.com/x/") == "http://proxy.corp:3128"
    assert proxy_for("http://127.0.0.1:8080/x/") is None  # plain http: never through a proxy
    assert proxy_for("https://pbx.internal.example/x/") is None
    assert proxy_for("https://10.1.2.3:8443/x/") is None
    # The connection's own proxy wins over the system's and over NO_PROXY.
    assert proxy_for("https://pbx.internal.example/x/", "site.proxy:80") == "http://site.proxy:80"


@pytest.mark.parametrize(
    ("typed", "spelled"),
    [
        ("", ""),
        ("  ", ""),
        ("proxy.example.com:3128", "http://proxy.example.com:3128"),
        ("HTTP://Proxy.Example.com:3128/", "http://proxy.example.com:3128"),
        ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ("socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080"),
    ],
)
def test_a_proxy_address_is_kept_in_one_spelling(typed: str, spelled: str) -> None:
    assert check_proxy(typed) == spelled


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("http://user:hunter2@proxy.example.com:3128", "without a user name or password"),
        ("user@proxy.example.com", "without a user name or password"),
        ("ftp://proxy.example.com", "http, https or socks5"),
        ("http://proxy.example.com:99999", "http, https or socks5"),
        ("http://proxy.example.com:3128/path", "only the proxy's address and port"),
    ],
)
def test_a_proxy_that_cannot_be_used_is_refused_with_a_reason(typed: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        check_proxy(typed)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match=words):
        NoojeeClient("https://pbx.example.com", KEY, proxy=typed)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "words"),
    [(b"407 Proxy Authentication Required", "without a sign-in"), (b"403 Forbidden", "allow")],
)
async def test_a_proxy_refusing_the_tunnel_is_a_setting_to_fix_not_an_outage(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch, answer: bytes, words: str
) -> None:
    proxy.connect_answer = answer
    port = proxy.url.rsplit(":", 1)[1]
    # A password in the variable is never repeated in what the user is told.
    monkeypatch.setenv("HTTPS_PROXY", f"http://corp%5Cann:hunter2@127.0.0.1:{port}")
    async with NoojeeClient("https://pbx.example.com", KEY) as client:
        outcome = await client.insert_lead(3, 42, 5, {"FirstPhone": "0383218199"})
        with pytest.raises(ApiError) as caught:
            await client.list_templates()
    assert proxy.request_lines[0] == "CONNECT pbx.example.com:443 HTTP/1.1"
    for told in (outcome, caught.value.outcome):
        assert told.kind is Kind.BLOCKED, told
        assert told.block_reason is BlockReason.BAD_CONFIG
        assert told.sentence.startswith(
            f"The proxy at 127.0.0.1:{port} refused the connection to the PBX ({answer.decode()})"
        ), told.sentence
        assert "ask your it team" in told.fix.lower()
        assert words in told.fix
        assert "pbx.example.com, port 443" in told.fix
        assert "hunter2" not in told.sentence + told.fix + told.message
    assert rule_for(outcome).step is Step.BLOCK


@pytest.mark.asyncio
async def test_the_connections_own_proxy_refusing_the_tunnel_is_named_in_the_message(
    proxy: RecordingProxy,
) -> None:
    proxy.connect_answer = b"407 Proxy Authentication Required"
    port = proxy.url.rsplit(":", 1)[1]
    async with NoojeeClient(
        "https://pbx.example.com:8443", KEY, proxy=f"127.0.0.1:{port}"
    ) as client:
        outcome = await client.probe()
    assert outcome.kind is Kind.BLOCKED
    assert f"The proxy at 127.0.0.1:{port} refused" in outcome.sentence
    assert "(407 Proxy Authentication Required)" in outcome.sentence
    assert "pbx.example.com, port 8443" in outcome.fix


@pytest.mark.asyncio
async def test_a_proxy_that_cannot_reach_the_pbx_is_still_an_outage(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy.connect_answer = b"502 Bad Gateway"
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    async with NoojeeClient("https://pbx.example.com", KEY) as client:
        outcome = await client.probe()
    assert outcome.kind is Kind.RETRY_LATER
