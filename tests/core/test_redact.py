"""The API key masked in every form a server, proxy or sign-in page may echo it in, on every
path: the client's outcomes, the queue file, CSV and XLSX exports."""

from __future__ import annotations

import html
import json
import sqlite3
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import openpyxl
import pytest
from helpers.dispatch import Harness, leads

from noojee_desk.core import redact
from noojee_desk.core.delivery import export
from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import State
from noojee_desk.core.redact import MASK, redact_text, redact_url

#: A key with characters that change when URL-encoded or JSON-escaped.
KEY = 'Zq9+mK/x7=Echo&"ab'


def echoes(key: str) -> list[str]:
    """The forms a key comes back in."""
    encoded = quote(key, safe="")
    return [
        f"denied for {key}",
        f"GET /insertLeadFast?fTemplateId=3&apiKey={encoded}&x=1",
        f"redirect?next=%2FinsertLeadFast%3FfTemplateId%3D3%26apiKey%3D{quote(encoded, safe='')}",
        f"next=%26apiKey%3D{encoded}%26fCampaignId%3D4",
        f"key {encoded} refused",
        f"key {quote_plus(key)} refused",
        f"key {quote(encoded, safe='')} refused",
        json.dumps({"apiKey": key}),
        json.dumps({"error": json.dumps({"apiKey": key})}),
        f"'api_key': '{key}'",
        "&lt;b&gt;" + html.escape(key),
        f"ApiKey: {key}".upper(),
    ]


def leaked(text: str, key: str = KEY) -> list[str]:
    """The parts of ``key`` (in any form) still readable in ``text``, its tail after the ``&``
    (where the parameter rule alone would stop) included."""
    forms = redact.forms(key) | {quote("Zq9+mK"), "Zq9+mK/x7", "x7=Echo"} | redact.forms('"ab')
    lower = text.lower()
    return [form for form in forms if form.lower() in lower]


@pytest.mark.parametrize("text", echoes(KEY))
def test_every_form_of_a_given_key_is_masked(text: str) -> None:
    masked = redact_text(text, KEY)
    assert not leaked(masked), masked
    assert MASK in masked


@pytest.mark.parametrize(
    "text",
    [
        "https://pbx/x?apiKey=abc123&fCampaignId=4",
        "next=%2Fx%3FapiKey%3Dabc123%26fCampaignId%3D4",
        "next=%252Fx%253FapiKey%253Dabc123%2526f%253D4",
        '{"apiKey": "abc123", "code": 1}',
        '{\\"apiKey\\": \\"abc123\\"}',
        "{'api_key': 'abc123'}",
    ],
)
def test_the_key_parameter_is_masked_in_every_encoding_without_knowing_the_key(
    text: str,
) -> None:
    masked = redact_url(text)
    assert "abc123" not in masked
    assert MASK in masked
    assert "4" in masked or "code" in masked or "abc" not in masked


def test_what_follows_an_encoded_key_is_kept() -> None:
    assert redact_url("a%26apiKey%3Dabc%26fCampaignId%3D4") == "a%26apiKey%3D***%26fCampaignId%3D4"


def test_ordinary_words_and_short_secrets_are_left_alone() -> None:
    assert redact_text("The PBX rejected the API key.") == "The PBX rejected the API key."
    redact.add_secret("ab")
    assert redact_text("about a tab") == "about a tab"


def test_the_log_filter_leaves_words_alone_after_a_short_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key of one letter (a test's, or a typo) must not turn "disk I/O error" into
    "dis*** I/O error" in every later record of the process."""
    import logging

    from noojee_desk.core.logs import RedactingFilter

    monkeypatch.setattr(redact, "_secrets", set())
    log_filter = RedactingFilter()
    log_filter.add_secret("k")
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "disk I/O error", None, None)
    log_filter.filter(record)
    assert record.getMessage() == "disk I/O error"
    assert log_filter.known_secrets() == ()
    log_filter.add_secret("a-real-key-4d2f")
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "key a-real-key-4d2f", None, None)
    log_filter.filter(record)
    assert record.getMessage() == f"key {MASK}"


def test_an_added_secret_is_masked_everywhere_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_secrets", set())
    secret = "only-registered-9f8e"
    assert secret in redact_text(f"x {secret}")
    redact.add_secret(secret)
    assert redact_text(f"x {secret} {quote(secret + '/', safe='')}") == f"x {MASK} {MASK}%2F"


def _echoing_server(request: httpx.Request) -> httpx.Response:
    """Refuses each lead quoting the request in every form it can think of."""
    key = request.url.params["apiKey"]
    message = " | ".join([*echoes(key), str(request.url)])
    return httpx.Response(200, json={"code": 104, "message": message})


@pytest.mark.asyncio
async def test_an_echoed_key_reaches_neither_the_queue_nor_the_exports(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    client = NoojeeClient(
        "https://pbx.example.com", KEY, transport=httpx.MockTransport(_echoing_server)
    )
    harness = Harness(outbox, client)
    try:
        batch = harness.enqueue(leads(3))
        harness.start()
        await harness.until(lambda: harness.finished(batch))
        await harness.stop()
        stored = outbox.leads()
        assert [lead.state for lead in stored] == [State.REJECTED] * 3
        for lead in stored:
            assert lead.last_message
            assert not leaked(lead.last_message + lead.sentence + lead.fix)
        export.write_csv(outbox, tmp_path / "results.csv")
        export.write_xlsx(outbox, tmp_path / "results.xlsx")
    finally:
        await client.aclose()
        outbox.close()
    assert not leaked((tmp_path / "results.csv").read_text(encoding="utf-8-sig"))
    book = openpyxl.load_workbook(tmp_path / "results.xlsx", read_only=True)
    cells = " ".join(str(c) for row in book.active.iter_rows(values_only=True) for c in row)
    book.close()
    assert "104" in cells
    assert not leaked(cells)
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        dump = "\n".join(db.iterdump())
    assert not leaked(dump)
