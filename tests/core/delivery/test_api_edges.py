"""Byte-level answers the emulator cannot produce, through httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noojee_desk.core.delivery.api import (
    API_PATH,
    ApiError,
    ConfigError,
    NoojeeClient,
    normalise_base_url,
)
from noojee_desk.core.delivery.outcome import BlockReason, Kind, RetryReason

KEY = "k3y-SECRET-value"
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> NoojeeClient:
    return NoojeeClient("https://pbx.example.com", KEY, transport=httpx.MockTransport(handler))


async def insert_with(handler: Handler, **kwargs: object):
    async with client_for(handler) as client:
        return await client.insert_lead(
            3, 42, 5, {"Name": "Jo", "FirstPhone": "0383218199"}, **kwargs
        )


@pytest.mark.asyncio
async def test_insert_wire_format_is_exactly_the_documented_one() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "message": "OK"})

    outcome = await insert_with(handler)
    assert outcome.kind is Kind.DELIVERED
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/servicemanager/rest/CampaignAPI/insertLeadFast"
    assert dict(request.url.params) == {
        "fTemplateId": "3",
        "fCampaignId": "42",
        "fAllocationId": "5",
        "apiKey": KEY,
    }
    assert request.headers["content-type"] == "application/json; charset=UTF-8"
    assert request.headers["accept"] == "application/json"
    assert json.loads(request.content) == {"Name": "Jo", "FirstPhone": "0383218199"}

    await insert_with(handler, allow_duplicates=True)
    assert seen[1].url.params["allowDuplicates"] == "true"


def answer(status: int, body: bytes, content_type: str = "application/json", **headers: str):
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers={"content-type": content_type, **headers}
        )

    return handler


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "body", "ctype", "kind", "reason"),
    [
        (200, b"", "application/json", Kind.UNKNOWN, None),
        (200, b'{"code": 0, "mess', "application/json", Kind.UNKNOWN, None),
        (200, b"OK thanks", "text/plain", Kind.UNKNOWN, None),
        (200, b'{"status": "fine"}', "application/json", Kind.UNKNOWN, None),
        (200, b"<html><title>Sign in</title></html>", "text/html", Kind.BLOCKED, "wrong_url"),
        (500, b'{"code": 103, "mess', "application/json", Kind.RETRY_LATER, "server_error"),
        (500, b"<html>Internal Server Error</html>", "text/html", Kind.RETRY_LATER, "server_error"),
        (502, b"<html>Bad gateway</html>", "text/html", Kind.RETRY_LATER, "maintenance"),
        (503, b"", "text/plain", Kind.RETRY_LATER, "maintenance"),
        (401, b"", "text/plain", Kind.BLOCKED, "key_rejected"),
        (403, b"<html>Forbidden</html>", "text/html", Kind.BLOCKED, "key_rejected"),
        (404, b"<html>Not Found</html>", "text/html", Kind.BLOCKED, "wrong_url"),
        (302, b"", "text/html", Kind.BLOCKED, "wrong_url"),
        (418, b"<html>teapot</html>", "text/html", Kind.BLOCKED, "bad_config"),
        (400, b'{"code": "105", "message": "DUPLICATE"}', "application/json", Kind.REJECTED, None),
        (200, b'{"code": 0, "message": "OK"}', "text/html", Kind.DELIVERED, None),
    ],
)
async def test_every_answer_maps_to_a_defined_outcome(
    status: int, body: bytes, ctype: str, kind: Kind, reason: str | None
) -> None:
    outcome = await insert_with(answer(status, body, ctype))
    assert outcome.kind is kind
    got = outcome.retry_reason or outcome.block_reason
    assert (got.value if got else None) == reason
    assert outcome.sentence
    assert outcome.latency >= 0


@pytest.mark.asyncio
async def test_unknown_code_with_a_server_error_keeps_the_lead_and_names_the_code() -> None:
    outcome = await insert_with(answer(500, b'{"code": 999, "message": "NEW_THING"}'))
    assert outcome.kind is Kind.RETRY_LATER
    assert outcome.retry_reason is RetryReason.SERVER_ERROR
    assert "999" in outcome.sentence
    assert "NEW_THING" in outcome.describe()


@pytest.mark.asyncio
async def test_rate_limited_429_uses_retry_after() -> None:
    outcome = await insert_with(answer(429, b"slow down", "text/plain", **{"retry-after": "7"}))
    assert outcome.kind is Kind.RETRY_LATER
    assert outcome.retry_reason is RetryReason.BUSY
    assert outcome.retry_after == 7.0


@pytest.mark.asyncio
async def test_list_calls_parse_only_what_they_need() -> None:
    body = {
        "type": "Campaign",
        "entities": [{"id": 42, "name": "Jan16a"}, {"id": "44", "name": "updatetest", "x": 1}, 7],
        "code": 0,
        "message": "OK",
        "extra": True,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        assert request.url.path.endswith("/getCampaignList")
        assert dict(request.url.params) == {"fTemplateId": "3", "apiKey": KEY}
        return httpx.Response(200, json=body)

    async with client_for(handler) as client:
        choices = await client.list_campaigns(3)
    assert [(c.id, c.name) for c in choices] == [(42, "Jan16a"), (44, "updatetest")]


@pytest.mark.asyncio
async def test_list_call_failure_raises_api_error_with_an_outcome() -> None:
    async with client_for(answer(403, b"<html>no</html>", "text/html")) as client:
        with pytest.raises(ApiError) as info:
            await client.list_templates()
    assert info.value.outcome.block_reason is BlockReason.KEY_REJECTED
    assert "API key" in str(info.value)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("pbx.example.com", "https://pbx.example.com/servicemanager/rest/CampaignAPI/"),
        ("https://pbx.example.com/", "https://pbx.example.com/servicemanager/rest/CampaignAPI/"),
        (
            "https://pbx.example.com:8443/servicemanager/rest/CampaignAPI/getCampaignList",
            "https://pbx.example.com:8443/servicemanager/rest/CampaignAPI/",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/servicemanager/rest/CampaignAPI/"),
        ("http://localhost", "http://localhost/servicemanager/rest/CampaignAPI/"),
        ("http://[::1]:9", "http://[::1]:9/servicemanager/rest/CampaignAPI/"),
    ],
)
def test_server_address_forms(typed: str, expected: str) -> None:
    assert normalise_base_url(typed) == expected


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("", "Enter the PBX server address"),
        ("http://pbx.example.com", "HTTPS"),
        ("ftp://pbx.example.com", "not a server address"),
        ("https://pbx.example.com/?apiKey=abc", "without"),
    ],
)
def test_bad_server_addresses_are_explained(typed: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        normalise_base_url(typed)
    assert "abc" not in str(info.value)


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("https://pbx.example.com:abc", "port after ':' must be a number"),
        ("https://pbx.example.com:99999", "port after ':' must be a number"),
        ("https://pbx.example.com:0", "port after ':' must be a number"),
        ("https://[pbx", "IPv6"),
        ("https://[pbx]", "IPv6"),
        ("https://pbx example.com", "space"),
        ("https://:443", "not a server address"),
    ],
)
def test_invalid_addresses_are_a_message_never_a_traceback(typed: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        normalise_base_url(typed)
    with pytest.raises(ConfigError, match=words):  # the client says the same, nothing else
        NoojeeClient(typed, KEY)


@pytest.mark.parametrize(
    "typed", ["user:pw@host", "https://a@b", "https://user:secret@pbx.example.com:8443", "a@b"]
)
def test_credentials_or_an_at_sign_in_the_address_are_refused(typed: str) -> None:
    with pytest.raises(ConfigError, match="without a user name, password or '@'") as info:
        normalise_base_url(typed)
    assert "pw" not in str(info.value)  # what was typed is not repeated
    assert "secret" not in str(info.value)


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_any_typed_address_gives_a_base_or_a_config_error(typed: str) -> None:
    try:
        base = normalise_base_url(typed)
    except ConfigError as exc:
        message = str(exc)
        base = ""
    else:
        message = ""
    if not base:
        assert message
        return
    assert base.endswith(API_PATH)
    assert "@" not in base
    httpx.URL(base)


def test_empty_key_and_bad_ca_file_are_explained(tmp_path) -> None:
    with pytest.raises(ConfigError, match="API key"):
        NoojeeClient("https://pbx.example.com", "  ")
    with pytest.raises(ConfigError, match="CA certificate"):
        NoojeeClient("https://pbx.example.com", KEY, ca_bundle=str(tmp_path / "missing.pem"))


def test_repr_hides_the_key() -> None:
    client = NoojeeClient("https://pbx.example.com", KEY, transport=httpx.MockTransport(print))
    assert KEY not in repr(client)


def _answering(status: int, body: object) -> NoojeeClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return NoojeeClient("http://127.0.0.1:9", "key", transport=httpx.MockTransport(answer))


@pytest.mark.asyncio
@pytest.mark.parametrize("code", [114, 4711])
async def test_an_unknown_code_with_a_4xx_is_a_rejection_that_needs_a_person(code: int) -> None:
    async with _answering(400, {"code": code, "message": "SOMETHING_NEW"}) as client:
        outcome = await client.insert_lead(3, 42, 101, {"FirstPhone": "0412000001"})
    assert outcome.kind is Kind.REJECTED
    assert outcome.code == code
    assert "SOMETHING_NEW" in outcome.describe()
    assert "support" in outcome.fix


@pytest.mark.asyncio
async def test_an_unknown_code_with_a_5xx_is_retried_as_a_server_error() -> None:
    async with _answering(500, {"code": 4711, "message": "oops"}) as client:
        outcome = await client.insert_lead(3, 42, 101, {"FirstPhone": "0412000001"})
    assert outcome.kind is Kind.RETRY_LATER
    assert outcome.retry_reason is RetryReason.SERVER_ERROR


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "code", [99999999999999999999999, "9" * 5000, 1e400, "1e3", True, [1], {"a": 1}]
)
async def test_a_code_that_is_no_code_is_an_unreadable_answer(code: object) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        text = json.dumps({"code": code, "message": "x"}) if code != 1e400 else '{"code": 1e400}'
        return httpx.Response(400, content=text.encode(), headers={"Content-Type": "text/json"})

    client = NoojeeClient("http://127.0.0.1:9", "key", transport=httpx.MockTransport(answer))
    async with client:
        outcome = await client.insert_lead(3, 42, 101, {"FirstPhone": "0412000001"})
    assert outcome.code is None
    assert outcome.kind is Kind.BLOCKED  # a 400 without a Noojee code: the settings are wrong


@pytest.mark.asyncio
async def test_a_lead_is_sent_as_utf8_and_says_so() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "message": "OK"})

    client = NoojeeClient("http://127.0.0.1:9", "key", transport=httpx.MockTransport(answer))
    async with client:
        await client.insert_lead(3, 42, 101, {"Name": "Zoë Müller", "FirstPhone": "0412000001"})
    assert seen[0].headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(seen[0].content.decode("utf-8"))["Name"] == "Zoë Müller"
