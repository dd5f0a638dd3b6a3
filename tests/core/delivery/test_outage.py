"""Recovery in seconds: a PBX that does not answer is probed with list calls at a bounded
interval, one that answers with errors (a manual import) with one lead at a time, and sending
resumes soon after its return however long it was away. Simulated time for the long outages,
the real emulator killed and restarted for a short one."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.dispatch import FAILING, OFFLINE, OK, UNKNOWN, FakeClient, leads
from helpers.outage import simulate
from helpers.simproc import SimProcess
from helpers.vtime import run

from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.dispatcher import Dispatcher
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.outcome import Kind, Outcome, RetryReason
from noojee_desk.core.delivery.policy import Breaker, BreakerMode, RetryTiming
from noojee_desk.core.delivery.records import State, Target


@pytest.mark.parametrize("outage", [30.0, 180.0, 600.0, 1800.0])
def test_after_an_outage_of_any_length_sending_resumes_within_15_s(
    tmp_path: Path, outage: float
) -> None:
    result = simulate(tmp_path, outage, kind="down")
    assert result.recovery is not None
    assert result.recovery <= 15.0, result.recovery
    assert result.largest_gap() <= 15.0
    # Leads in flight when it went away come back refused; after that, only list calls.
    assert all(t < 1.0 for t in result.lead_calls), result.lead_calls
    if outage > 60:
        assert result.per_minute(since=60.0) <= 6.0  # at most one probe per 10 s on average
    assert result.probes  # and it kept asking


@pytest.mark.parametrize("outage", [180.0, 600.0])
def test_an_import_is_probed_with_one_lead_at_most_every_30_s(
    tmp_path: Path, outage: float
) -> None:
    result = simulate(tmp_path, outage, kind="import")
    assert result.probes == []  # the lists work during an import: only a lead can tell
    assert result.largest_gap() <= 31.0  # 30 s and the call's own latency
    assert result.per_minute(since=60.0) <= 6.0
    assert result.recovery is not None
    assert result.recovery <= 31.0, result.recovery


def test_the_probe_mode_follows_what_the_pbx_does() -> None:
    timing = RetryTiming()
    breaker = Breaker(timing, random.Random(3))
    breaker.trouble(0.0, RetryReason.OFFLINE, probe=False)  # refused: open at once
    assert breaker.is_open
    assert breaker.mode is BreakerMode.DOWN
    gaps = []
    now = 0.0
    for _ in range(20):
        gaps.append(breaker.probe_at - now)
        now = breaker.probe_at
        breaker.probing = True
        breaker.trouble(now, RetryReason.OFFLINE, probe=True)
    assert gaps[0] <= 1.0
    assert all(10.0 <= g <= 13.0 for g in gaps[5:]), gaps
    # The probe is answered with a 103: the PBX is up but failing; lead probes, up to 30 s.
    breaker.probing = True
    breaker.trouble(now, RetryReason.SERVER_ERROR, probe=True, no_answer=False)
    assert breaker.mode is BreakerMode.FAILING
    for _ in range(20):
        assert breaker.probe_at - now <= 30.0
        now = breaker.probe_at
        breaker.trouble(now, RetryReason.SERVER_ERROR, probe=True, no_answer=False)
    breaker.answered()
    assert not breaker.is_open


def test_no_answer_is_told_apart_from_an_answer_with_errors() -> None:
    assert OFFLINE.no_answer
    assert UNKNOWN.no_answer  # a connection reset before the answer
    assert Outcome(
        Kind.RETRY_LATER, retry_reason=RetryReason.MAINTENANCE, http_status=503
    ).no_answer
    assert not FAILING.no_answer
    assert not Outcome(Kind.UNKNOWN, http_status=200).no_answer  # an unreadable answer
    assert not OK.no_answer


def test_leads_that_waited_out_the_outage_are_due_at_its_end(tmp_path: Path) -> None:
    """Leads refused while it went away back off for minutes; the PBX's return sends them."""
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    sent_after: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        up_at = 120.0

        def answer(n: int, f: dict[str, str], a: bool) -> Outcome:
            if loop.time() < up_at:
                return OFFLINE
            sent_after.append(loop.time() - up_at)
            return OK

        client = FakeClient(answer)
        client.probe_answer = lambda: OFFLINE if loop.time() < up_at else OK
        wall = time.time() + 5.0
        dispatcher = Dispatcher(
            outbox,
            client,
            "p",
            clock=lambda: wall + loop.time(),
            monotonic=loop.time,
            rng=random.Random(2),
        )
        outbox.enqueue("p", Target(3, 42, 101), leads(5), allow_duplicates=False, source="t")
        runner = asyncio.ensure_future(dispatcher.run())
        await asyncio.sleep(up_at + 20)
        await dispatcher.stop()
        await runner

    run(main())
    assert outbox.counts("p")[State.DELIVERED] == 5
    assert len(sent_after) == 5
    assert max(sent_after) <= 15.0, sent_after
    outbox.close()


@pytest.mark.asyncio
@pytest.mark.slow
async def test_the_real_emulator_killed_and_restarted_is_noticed_in_seconds(
    tmp_path: Path, sim_factory: Callable[..., SimProcess]
) -> None:
    sim = sim_factory("--capacity", "4", "--min-service", "0.02", "--jitter", "0.0")
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    batch = outbox.enqueue(
        "p",
        Target(3, 42, 101),
        leads(150),
        allow_duplicates=False,
        source="t",
    )
    # The default timing at a tenth: list probes every 1.0 to 1.3 s once the ramp is over.
    timing = RetryTiming(
        backoff_base=0.4, probe_base=0.2, probe_cap=3.0, down_probe_first=0.1,
        down_probe_every=(1.0, 1.3), expire_every=6.0,
    )  # fmt: skip
    async with NoojeeClient(sim.url, "demo-key") as client:
        dispatcher = Dispatcher(outbox, client, "p", timing=timing, figures_interval=0.05)

        async def until(condition: Callable[[], bool], within: float = 30.0) -> None:
            reached = asyncio.Event()
            unsubscribe = dispatcher.subscribe(lambda _: condition() and reached.set())
            try:
                if not condition():
                    await asyncio.wait_for(reached.wait(), within)
            finally:
                unsubscribe()

        def delivered() -> int:
            return outbox.counts("p")[State.DELIVERED]

        runner = asyncio.ensure_future(dispatcher.run())
        try:
            await until(lambda: delivered() >= 30)
            await asyncio.to_thread(sim.kill)
            await until(lambda: dispatcher.breaker.is_open)
            await asyncio.sleep(6.0)  # down long enough for the ramp to end
            assert dispatcher.probes >= 4
            await asyncio.to_thread(sim.start)  # same port, same state file
            back = time.monotonic()
            count = delivered()
            await until(lambda: delivered() > count, within=10.0)
            resumed = time.monotonic() - back
            assert resumed <= 1.3 + 0.7, resumed  # the interval's upper end, and some slack
            await until(lambda: outbox.counts(batch_id=batch.id).open == 0)
        finally:
            await dispatcher.stop()
            await runner
    state = await asyncio.to_thread(sim.state)
    assert outbox.counts("p")[State.DELIVERED] == 150
    assert len({lead["external_id"] for lead in state["leads"]}) == 150
    outbox.close()
