"""The retry policy: every code has a rule, waits come from RetryTiming or the server's own hint."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from noojee_desk.core.delivery import codes
from noojee_desk.core.delivery.api import MAX_RETRY_AFTER, NoojeeClient
from noojee_desk.core.delivery.outcome import Kind, Outcome, RetryReason
from noojee_desk.core.delivery.policy import (
    POLICY,
    RetryTiming,
    Step,
    Wait,
    policy_table,
    rule_for,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("code", [*sorted(codes.CODES), 114, 999])
def test_every_code_resolves_to_a_rule_of_its_own(code: int) -> None:
    entry = codes.describe(code)
    # Keyed exactly: no code reaches a rule only through a fallback.
    assert (entry.kind, entry.retry) in POLICY
    rule = rule_for(Outcome(entry.kind, code=code, retry_reason=entry.retry))
    expected = {
        Kind.DELIVERED: Step.DELIVER,
        Kind.REJECTED: Step.REJECT,
        Kind.RETRY_LATER: Step.RETRY,
    }[entry.kind]
    assert rule.step is expected
    if entry.kind is Kind.RETRY_LATER:
        assert entry.retry is not None


def test_109_is_busy_and_103_is_a_server_error() -> None:
    assert codes.describe(codes.TOO_MANY_CONCURRENT).retry is RetryReason.BUSY
    assert rule_for(Outcome(Kind.RETRY_LATER, retry_reason=RetryReason.BUSY)).wait is Wait.SOON
    assert codes.describe(codes.EXCEPTION).retry is RetryReason.SERVER_ERROR


def _client(status: int, body: dict[str, object], headers: dict[str, str] | None = None):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers or {})

    return NoojeeClient("http://127.0.0.1:9", "key", transport=httpx.MockTransport(answer))


async def _insert(client: NoojeeClient) -> Outcome:
    async with client:
        return await client.insert_lead(3, 42, 101, {"FirstPhone": "0414000000"})


@pytest.mark.asyncio
async def test_a_109_waits_what_the_timing_says_not_an_invented_hint() -> None:
    body = {"code": 109, "message": "TIMEOUT_TOO_MANY_CONCURRENT_REQUESTS"}
    outcome = await _insert(_client(400, body))
    assert outcome.retry_reason is RetryReason.BUSY
    assert outcome.retry_after is None
    timing = RetryTiming(soon=(0.01, 0.02))
    rng = random.Random(1)
    waits = [wait_for(rule_for(outcome), outcome, n, timing, rng) for n in range(1, 50)]
    assert all(0.01 <= w <= 0.02 for w in waits), max(waits)


@pytest.mark.asyncio
async def test_a_109_with_retry_after_waits_about_that_long() -> None:
    body = {"code": 109, "message": "busy"}
    outcome = await _insert(_client(400, body, {"Retry-After": "4"}))
    assert outcome.retry_after == 4.0
    rng = random.Random(2)
    waits = [wait_for(rule_for(outcome), outcome, 1, RetryTiming(), rng) for _ in range(50)]
    assert all(3.0 <= w <= 6.0 for w in waits)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("30", 30.0),
        ("0", None),  # no wait asked for: the policy's own wait applies
        ("999999", MAX_RETRY_AFTER),
        ("inf", None),
        ("1e400", None),
        ("nan", None),
        ("-5", None),
        ("soon", None),
        ("9" * 5000, None),
    ],
)
@pytest.mark.asyncio
async def test_retry_after_is_bounded_and_absurd_hints_are_ignored(
    header: str, expected: float | None
) -> None:
    outcome = await _insert(_client(503, {}, {"Retry-After": header}))
    assert outcome.kind is Kind.RETRY_LATER
    assert outcome.retry_after == expected


@pytest.mark.asyncio
async def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    outcome = await _insert(_client(503, {}, {"Retry-After": when}))
    assert outcome.retry_after is not None
    assert 50 <= outcome.retry_after <= 61


def test_the_architecture_notes_show_the_policy_as_it_is() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert policy_table() in text, "docs/architecture.md: paste policy.policy_table() again"


def test_a_long_hint_spread_never_passes_the_longest_wait() -> None:
    from noojee_desk.core.delivery.policy import LONGEST_HINT

    busy = Outcome(Kind.RETRY_LATER, retry_reason=RetryReason.BUSY, retry_after=LONGEST_HINT)
    rng = random.Random(3)
    waits = [wait_for(rule_for(busy), busy, 1, RetryTiming(), rng) for _ in range(200)]
    assert max(waits) <= LONGEST_HINT
    assert min(waits) >= 0.75 * LONGEST_HINT


def test_114_is_told_as_listed_but_undocumented() -> None:
    entry = codes.describe(codes.UNLISTED_114, 400)
    assert entry.kind is Kind.REJECTED
    assert "114" in entry.sentence
    assert "not public" in entry.sentence
