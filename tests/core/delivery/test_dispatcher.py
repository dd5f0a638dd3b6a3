"""The dispatcher: policy per answer, breaker, pause and controls, events, shutdown, recovery."""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures.thread import BrokenThreadPool

import pytest
from helpers.dispatch import (
    BUSY,
    FAILING,
    KEY,
    OFFLINE,
    OK,
    TARGET,
    UNKNOWN,
    FakeClient,
    Harness,
    leads,
    rejected,
)
from helpers.simproc import SimProcess

from noojee_desk.core.delivery import codes
from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.dispatcher import (
    BatchFinished,
    Dispatcher,
    Event,
    LeadChanged,
    LeadsReloaded,
    QueueFigures,
)
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.outcome import Kind, Outcome
from noojee_desk.core.delivery.policy import POLICY, Step, rule_for
from noojee_desk.core.delivery.records import LeadInput, LeadQuery, OutboxBusy, State
from noojee_desk.core.delivery.writer import OutboxWriter
from noojee_desk.sim.emulator import Emulator
from noojee_desk.sim.server import SimServer


def test_the_policy_table_covers_every_kind() -> None:
    for kind in Kind:
        assert (kind, None) in POLICY
    assert rule_for(BUSY).shrink_limit
    assert rule_for(OFFLINE).server_trouble
    assert rule_for(UNKNOWN).maybe_landed
    assert rule_for(KEY).step is Step.BLOCK
    assert rule_for(rejected(104)).step is Step.REJECT


@pytest.mark.asyncio
async def test_it_delivers_everything_and_reports_it(make: Callable[..., Harness]) -> None:
    h = make(FakeClient())
    batch = h.enqueue(leads(50))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 50}
    finished = next(e for e in h.events if isinstance(e, BatchFinished))
    assert finished.counts["delivered"] == 50
    changes = [e for e in h.events if isinstance(e, LeadChanged)]
    assert {e.state for e in changes} == {State.SENDING, State.DELIVERED}
    assert sum(e.state is State.DELIVERED for e in changes) == 50
    external_ids = {fields["njExternalLeadId"] for fields, _ in h.client.calls}  # type: ignore[union-attr]
    assert len(external_ids) == 50
    lead = h.outbox.leads()[0]
    assert lead.attempts == 1
    assert lead.delivered_at is not None
    assert [a.outcome for a in h.outbox.attempts(lead.id)] == ["delivered"]


@pytest.mark.asyncio
async def test_figures_are_coalesced_not_one_per_lead(make: Callable[..., Harness]) -> None:
    h = make(FakeClient(), figures_interval=0.2)
    batch = h.enqueue(leads(300))
    h.start()
    started = asyncio.get_running_loop().time()
    await h.until(lambda: h.finished(batch))
    elapsed = asyncio.get_running_loop().time() - started
    figures = [e for e in h.events if isinstance(e, QueueFigures)]
    assert 1 <= len(figures) <= elapsed / 0.2 + 3
    last = figures[-1]
    assert last.counts["delivered"] == 300
    assert last.queued == 0
    assert last.server_state == "ok"
    assert last.limit >= 1


@pytest.mark.asyncio
async def test_a_batch_is_finished_as_its_last_answer_is_recorded_not_figures_later(
    make: Callable[..., Harness],
) -> None:
    """Figures are coalesced, but the end of a batch is not held back by them."""
    h = make(FakeClient(), figures_interval=30.0)
    loop = asyncio.get_running_loop()
    for round_ in range(2):  # the second batch: while figures are still within their interval
        batch = h.enqueue(leads(20, start=100 * round_))
        if h.task is None:
            h.start()
        asked = loop.time()
        await h.until(lambda: h.finished(batch), within=5.0)  # noqa: B023 - awaited at once
        assert loop.time() - asked < 2.0
        assert h.states() == {"delivered": 20 * (round_ + 1)}
        figures = [e for e in h.events if isinstance(e, QueueFigures)]
        assert figures[-1].counts["delivered"] == 20 * (round_ + 1)  # told with it


@pytest.mark.asyncio
async def test_never_more_in_flight_than_the_hard_cap(make: Callable[..., Harness]) -> None:
    client = FakeClient()
    client.delay = 0.005
    h = make(client, max_concurrency=3)
    batch = h.enqueue(leads(200))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert client.max_running <= 3
    assert h.dispatcher.limiter.limit == 3


@pytest.mark.asyncio
async def test_rejections_are_final_with_sentence_and_fix(make: Callable[..., Harness]) -> None:
    h = make(FakeClient(lambda n, f, a: rejected(104)))
    batch = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.finished(batch))
    (lead,) = h.outbox.leads()
    assert lead.state is State.REJECTED
    assert lead.last_code == 104
    assert lead.sentence == codes.CODES[104].sentence
    assert lead.fix == codes.CODES[104].fix
    assert lead.attempts == 1


@pytest.mark.asyncio
async def test_a_112_after_an_unknown_outcome_means_delivered(
    make: Callable[..., Harness],
) -> None:
    h = make(FakeClient(lambda n, f, a: UNKNOWN if n == 1 else rejected(112)))
    batch = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.finished(batch))
    (lead,) = h.outbox.leads()
    assert lead.state is State.DELIVERED
    assert lead.last_code == 112
    assert lead.attempts == 2
    first, second = h.client.calls  # type: ignore[union-attr]
    assert first[0]["njExternalLeadId"] == second[0]["njExternalLeadId"]


@pytest.mark.asyncio
async def test_a_112_for_a_generated_id_is_delivered_even_on_the_first_answer(
    make: Callable[..., Harness],
) -> None:
    """A queue file that lost its -wal after a crash: the lead is on the PBX, the queue does
    not know it was sent. Our generated ids belong to no other lead: 112 means it landed."""
    h = make(FakeClient(lambda n, f, a: rejected(112)))
    batch = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.finished(batch))
    (lead,) = h.outbox.leads()
    assert lead.external_id_generated
    assert not lead.unknown_outcome
    assert lead.state is State.DELIVERED
    assert lead.attempts == 1


@pytest.mark.asyncio
async def test_a_112_for_an_id_the_user_gave_is_a_rejection(
    make: Callable[..., Harness],
) -> None:
    h = make(FakeClient(lambda n, f, a: rejected(112)))
    given = LeadInput({"Name": "A", "FirstPhone": "0412345678", "njExternalLeadId": "CRM-7"})
    batch = h.enqueue([given])
    h.start()
    await h.until(lambda: h.finished(batch))
    (lead,) = h.outbox.leads()
    assert not lead.external_id_generated
    assert lead.state is State.REJECTED


@pytest.mark.asyncio
async def test_a_105_after_an_unknown_outcome_is_a_duplicate_never_delivered(
    make: Callable[..., Harness],
) -> None:
    h = make(FakeClient(lambda n, f, a: UNKNOWN if n == 1 else rejected(105)))
    batch = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.finished(batch))
    (lead,) = h.outbox.leads()
    assert lead.state is State.DUPLICATE
    assert lead.last_code == 105
    assert "earlier attempt" in lead.sentence
    assert h.states() == {"duplicate": 1}
    assert h.outbox.counts("p")[State.DELIVERED] == 0
    finished = [e for e in h.events if isinstance(e, BatchFinished)]
    assert finished[-1].counts["duplicate"] == 1
    # It can still be sent as a real second lead for the number.
    h.client.answer = lambda n, f, a: OK if a else rejected(105)  # type: ignore[union-attr]
    assert h.dispatcher.resend_with_duplicates([lead.id]) == 1
    await h.until(lambda: h.states() == {"delivered": 1})


@pytest.mark.asyncio
async def test_a_duplicate_without_an_unknown_outcome_is_a_rejection(
    make: Callable[..., Harness],
) -> None:
    h = make(FakeClient(lambda n, f, a: FAILING if n == 1 else rejected(105)))
    batch = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert h.outbox.leads()[0].state is State.REJECTED


@pytest.mark.asyncio
async def test_busy_is_retried_soon_with_a_smaller_limit(make: Callable[..., Harness]) -> None:
    h = make(FakeClient(lambda n, f, a: BUSY if n <= 3 else OK))
    h.dispatcher.limiter.set_max(16)
    batch = h.enqueue(leads(3))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 3}
    assert any("109" in d.reason for d in h.dispatcher.limiter.decisions)
    assert h.dispatcher.server_state() == "busy"


@pytest.mark.asyncio
async def test_a_rejected_key_pauses_the_queue_and_fails_nothing(
    make: Callable[..., Harness],
) -> None:
    h = make(FakeClient(lambda n, f, a: KEY))
    batch = h.enqueue(leads(20))
    h.start()
    await h.until(lambda: h.dispatcher.paused_reason is not None)
    await h.until(lambda: not h.dispatcher.in_flight)
    figures = h.dispatcher.figures()
    assert figures.server_state == "blocked"
    assert figures.needs_attention
    assert figures.paused_reason == "The PBX refused the API key."
    assert figures.fix == "Check the key."
    assert h.states() == {"queued": 20}
    calls = len(h.client.calls)  # type: ignore[union-attr]
    assert calls <= 2  # the limit starts at 1: the first refusal stops the queue
    h.dispatcher.set_client(FakeClient())
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 20}


@pytest.mark.asyncio
async def test_the_breaker_sends_one_probe_at_a_time_while_down(
    make: Callable[..., Harness],
) -> None:
    up = asyncio.Event()
    client = FakeClient(lambda n, f, a: OK if up.is_set() else OFFLINE)
    h = make(client, max_concurrency=8)
    batch = h.enqueue(leads(40))
    h.start()
    await h.until(lambda: h.dispatcher.breaker.is_open)
    assert h.dispatcher.server_state() == "offline"
    before = len(client.calls)
    await h.until(lambda: len(client.probes) >= 3)  # list calls while nothing answers
    assert len(client.calls) == before  # no lead is spent on a PBX that does not answer
    assert client.max_running == 1  # the limit never grew while nothing answered
    assert h.dispatcher.figures().next_retry_at is not None
    up.set()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 40}
    assert not h.dispatcher.breaker.is_open


@pytest.mark.asyncio
async def test_sporadic_failures_do_not_open_the_breaker(make: Callable[..., Harness]) -> None:
    h = make(FakeClient(lambda n, f, a: FAILING if n % 4 == 0 else OK))
    batch = h.enqueue(leads(40))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 40}
    assert h.dispatcher.server_state() == "ok"


@pytest.mark.asyncio
async def test_the_retry_budget_ends_in_failed_and_retry_restarts_it(
    make: Callable[..., Harness],
) -> None:
    now = [time.time() + 5.0]  # ahead of the outbox clock: the new leads are due
    works = asyncio.Event()
    client = FakeClient(lambda n, f, a: OK if works.is_set() else FAILING)
    h = make(client, clock=lambda: now[0], retry_budget=60.0)
    batch = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.outbox.leads()[0].attempts >= 1)
    lead = h.outbox.leads()[0]
    assert lead.state is State.QUEUED
    now[0] += 61  # the next failure is past the budget
    h.dispatcher.wake()
    await h.until(lambda: h.outbox.leads()[0].state is State.FAILED)
    failed = h.outbox.leads()[0]
    assert "Gave up after" in failed.sentence
    assert failed.last_code == 103
    await h.until(lambda: h.finished(batch))
    works.set()
    assert h.dispatcher.retry([failed.id]) == 1
    await h.until(lambda: h.outbox.leads()[0].state is State.DELIVERED)
    await h.until(lambda: h.finished_again(batch, 2))  # finished as failed, then delivered


@pytest.mark.asyncio
async def test_leads_stuck_behind_an_open_breaker_expire(make: Callable[..., Harness]) -> None:
    now = [time.time() + 5.0]  # ahead of the outbox clock: the new leads are due
    client = FakeClient(lambda n, f, a: OFFLINE)
    h = make(client, clock=lambda: now[0], retry_budget=30.0)
    h.enqueue(leads(3))
    h.start()
    await h.until(lambda: h.dispatcher.breaker.is_open)
    await h.until(lambda: not h.dispatcher.in_flight)
    tried = [x.id for x in h.outbox.leads() if x.attempts]
    now[0] += 31
    h.dispatcher.wake()
    await h.until(lambda: h.outbox.counts("p")[State.FAILED] >= len(tried))
    assert all(h.outbox.get(i).state is State.FAILED for i in tried)  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_pause_holds_new_calls_and_resume_continues(make: Callable[..., Harness]) -> None:
    client = FakeClient()
    h = make(client)
    h.dispatcher.pause("Lunch")
    batch = h.enqueue(leads(5))
    h.start()
    await h.until(lambda: any(isinstance(e, QueueFigures) for e in h.events))
    assert client.calls == []
    assert h.dispatcher.figures().paused_reason == "Lunch"
    assert not h.dispatcher.figures().needs_attention
    h.dispatcher.resume()
    await h.until(lambda: h.finished(batch))
    assert len(client.calls) == 5


@pytest.mark.asyncio
async def test_cancel_and_hold(make: Callable[..., Harness]) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    h = make(client, max_concurrency=1)
    batch = h.enqueue(leads(4))
    h.start()
    await h.until(lambda: len(h.dispatcher.in_flight) == 1)
    (flying,) = h.dispatcher.in_flight
    assert h.dispatcher.cancel([flying, 2]) == 2
    assert h.dispatcher.hold([3]) == 1
    assert h.outbox.get(2).state is State.CANCELLED  # type: ignore[union-attr]
    assert h.outbox.get(3).state is State.HELD  # type: ignore[union-attr]
    client.answer = lambda n, f, a: FAILING  # the flying one fails: it is cancelled, not retried
    client.gate.set()
    await h.until(lambda: h.outbox.get(flying).state is State.CANCELLED)  # type: ignore[union-attr]
    client.answer = lambda n, f, a: OK
    await h.until(lambda: h.outbox.get(4).state is State.DELIVERED)  # type: ignore[union-attr]
    assert not h.finished(batch)  # lead 3 is held
    assert h.dispatcher.retry([3, 2]) == 2
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 3, "cancelled": 1}


@pytest.mark.asyncio
async def test_a_cancelled_lead_in_flight_that_lands_is_delivered(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    h = make(client)
    h.enqueue(leads(1))
    h.start()
    await h.until(lambda: len(h.dispatcher.in_flight) == 1)
    h.dispatcher.cancel(list(h.dispatcher.in_flight))
    client.gate.set()
    await h.until(lambda: h.outbox.leads()[0].state is State.DELIVERED)


@pytest.mark.asyncio
async def test_resend_rejected_duplicates_with_allow_duplicates(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient(lambda n, f, a: OK if a else rejected(105))
    h = make(client)
    batch = h.enqueue(leads(3))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"rejected": 3}
    ids = [x.id for x in h.outbox.leads()]
    assert h.dispatcher.resend_with_duplicates(ids) == 3
    await h.until(lambda: h.states() == {"delivered": 3})
    assert [a for _, a in client.calls] == [False] * 3 + [True] * 3


@pytest.mark.asyncio
async def test_bulk_controls_send_one_reload_event(make: Callable[..., Harness]) -> None:
    h = make(FakeClient())
    h.dispatcher.pause()
    batch = h.enqueue(leads(300))
    h.events.clear()
    assert h.dispatcher.cancel(range(1, 301)) == 300
    assert [e for e in h.events if isinstance(e, LeadsReloaded)] == [
        LeadsReloaded(frozenset({batch}))
    ]
    assert not [e for e in h.events if isinstance(e, LeadChanged)]


@pytest.mark.asyncio
async def test_stop_requeues_calls_in_flight_as_unknown(make: Callable[..., Harness]) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()  # never opened: calls hang
    h = make(client)
    h.enqueue(leads(3))
    h.start()
    await h.until(lambda: len(h.dispatcher.in_flight) == 1)
    await h.dispatcher.stop(grace=0.05)
    assert h.task is not None
    await h.task
    first = h.outbox.leads()[0]
    assert first.state is State.QUEUED
    assert first.unknown_outcome
    assert h.states() == {"queued": 3}
    assert not h.dispatcher.running


@pytest.mark.asyncio
async def test_a_restart_recovers_leads_left_sending(outbox: Outbox) -> None:
    outbox.enqueue("p", TARGET, leads(2), allow_duplicates=False, source="x")
    outbox.claim_due("p", 1)  # a process died during this call
    client = FakeClient(lambda n, f, a: rejected(112) if f["Name"] == "P0" else OK)
    h = Harness(outbox, client)
    h.start()
    try:
        await h.until(lambda: h.states() == {"delivered": 2})
    finally:
        await h.stop()


@pytest.mark.asyncio
async def test_only_one_dispatcher_sends_a_profile(make: Callable[..., Harness]) -> None:
    first = make(FakeClient())
    first.start()
    await first.until(lambda: first.dispatcher.running)
    second = Dispatcher(first.outbox, FakeClient(), "p")
    with pytest.raises(OutboxBusy):
        await second.run()
    other = Dispatcher(first.outbox, FakeClient(), "other profile")
    task = asyncio.ensure_future(other.run())
    await other.stop()
    await task


@pytest.mark.asyncio
async def test_a_failing_subscriber_does_not_stop_the_queue(make: Callable[..., Harness]) -> None:
    h = make(FakeClient())

    def broken(_: Event) -> None:
        raise RuntimeError("subscriber bug")

    h.dispatcher.subscribe(broken)
    batch = h.enqueue(leads(5))
    h.start()
    await h.until(lambda: h.finished(batch))


@pytest.mark.asyncio
async def test_events_as_an_async_iterator(make: Callable[..., Harness]) -> None:
    h = make(FakeClient())
    seen: list[Event] = []

    async def consume() -> None:
        async for event in h.dispatcher.events():
            seen.append(event)
            if isinstance(event, BatchFinished):
                return

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    h.enqueue(leads(3))
    h.start()
    await asyncio.wait_for(consumer, 10)
    assert sum(isinstance(e, LeadChanged) and e.state is State.DELIVERED for e in seen) == 3


@pytest.mark.asyncio
async def test_a_client_that_raises_does_not_lose_the_lead(make: Callable[..., Harness]) -> None:
    def answer(n: int, f: dict[str, str], a: bool) -> Outcome:
        if n == 1:
            raise ValueError("bug in apiKey=secret handling")
        return OK

    h = make(FakeClient(answer))
    batch = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.finished(batch))
    (first, second) = h.outbox.attempts(1)
    assert first.outcome == "unknown"
    assert "secret" not in first.message
    assert second.outcome == "delivered"


# -- with the real client and the emulator over HTTP ---------------------------------------------


@pytest.mark.asyncio
async def test_against_the_emulator_every_lead_lands_once(
    make: Callable[..., Harness], pbx: tuple[Emulator, SimServer]
) -> None:
    emulator, server = pbx
    async with NoojeeClient(server.url, "demo-key") as client:
        h = make(client)
        items = leads(120)
        items[5] = LeadInput({"Name": "DNC", "FirstPhone": "0299999999"}, frozenset(), 6)
        items[9] = LeadInput({"Name": "Twin", "FirstPhone": items[8].fields["FirstPhone"]})
        batch = h.enqueue(items)
        h.start()
        await h.until(lambda: h.finished(batch), within=30)
    state = emulator.state()
    assert emulator.max_running <= 4
    assert h.states() == {"delivered": 118, "rejected": 2}
    by_ext = {lead["external_id"] for lead in state["leads"]}
    ours = {x.external_id for x in h.outbox.leads(LeadQuery(states=frozenset({State.DELIVERED})))}
    assert by_ext == ours
    assert len(state["leads"]) == 118
    rejected_codes = sorted(
        x.last_code for x in h.outbox.leads(LeadQuery(states=frozenset({State.REJECTED})))
    )
    assert rejected_codes == [104, 105]


@pytest.mark.asyncio
async def test_at_the_emulators_limit_it_measures_its_gap_and_keeps_the_queue_short(
    make: Callable[..., Harness], sim_factory: Callable[..., SimProcess]
) -> None:
    """The emulator in its own process takes 3 calls at once, 50 ms each: the limit settles at
    the capacity plus what covers the gap between an answer and the next call, never piling
    calls on the server (no 109, most calls not waiting long)."""
    sim = sim_factory("--capacity", "3", "--min-service", "0.05", "--jitter", "0.0")
    async with NoojeeClient(sim.url, "demo-key") as client:
        h = make(client)
        batch = h.enqueue(leads(400))
        h.start()
        await h.until(lambda: h.finished(batch), within=60)
    limiter = h.dispatcher.limiter
    assert h.states() == {"delivered": 400}
    state = sim.state()
    assert state["codes"].get("109", 0) == 0
    waits = sorted(state["queue_waits"])
    assert waits[len(waits) // 2] <= 0.025  # half a call at most, for half the calls
    assert 0 < limiter.gap < 0.05  # measured: our own work between two calls of a slot
    after_start = [d for d in limiter.decisions if "slow start" not in d.reason][2:]
    assert after_start
    assert max(d.new_limit for d in after_start) <= 3 + 2
    assert limiter.limit >= 3


@pytest.mark.asyncio
async def test_against_the_emulator_a_changed_key_pauses_until_fixed(
    make: Callable[..., Harness], pbx: tuple[Emulator, SimServer]
) -> None:
    emulator, server = pbx
    emulator.set_key("new-key")
    async with (
        NoojeeClient(server.url, "demo-key") as old,
        NoojeeClient(server.url, "new-key") as new,
    ):
        h = make(old)
        batch = h.enqueue(leads(10))
        h.start()
        await h.until(lambda: h.dispatcher.figures().needs_attention)
        assert h.states() == {"queued": 10}
        h.dispatcher.set_client(new)
        await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 10}
    assert len(emulator.leads()) == 10


@pytest.mark.asyncio
async def test_a_writer_that_cannot_open_ends_the_run_and_frees_the_queue(
    make: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_open(self: OutboxWriter) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(OutboxWriter, "_open", cannot_open)
    h = make(FakeClient())
    h.enqueue(leads(1))
    with pytest.raises(BrokenThreadPool):
        await h.dispatcher.run()
    assert not h.dispatcher.running
    monkeypatch.undo()
    h.start()  # the profile's lock was released: it can run again
    await h.until(lambda: h.states() == {"delivered": 1})


@pytest.mark.asyncio
@pytest.mark.parametrize(("ask", "state"), [("cancel", State.CANCELLED), ("hold", State.HELD)])
async def test_a_cancel_or_hold_asked_for_while_sending_survives_a_stop(
    make: Callable[..., Harness], ask: str, state: State
) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()  # the call hangs until the stop
    h = make(client)
    h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.states() == {"sending": 1})
    (lead,) = h.outbox.leads(LeadQuery(profile="p"))
    assert getattr(h.dispatcher, ask)([lead.id]) == 1
    await h.dispatcher.stop(grace=0)
    await h.task
    assert h.outbox.get(lead.id).state is state  # not queued, to be sent at the next start


# -- one sender per profile ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_leads_another_process_queues_are_sent_within_a_second(
    make: Callable[..., Harness],
) -> None:
    """The queue's holder is idle (no wake-up due); another connection, as another process
    would, queues leads without telling it: it sees the commit and sends them."""
    h = make(FakeClient())
    h.start()
    await h.until(lambda: h.dispatcher.running)
    await asyncio.sleep(0.1)  # idle: waiting with nothing due
    with Outbox(h.outbox.path) as elsewhere:
        batch = elsewhere.enqueue("p", TARGET, leads(3), allow_duplicates=False, source="other")
    queued_at = time.monotonic()
    await h.until(lambda: h.finished(batch.id), within=5.0)
    assert time.monotonic() - queued_at < 1.5
    assert h.states() == {"delivered": 3}


@pytest.mark.asyncio
async def test_a_busy_queue_says_who_has_it_and_is_taken_over_when_it_ends(
    make: Callable[..., Harness],
) -> None:
    holder = make(FakeClient()).outbox.lock_profile("p")
    holder.acquire()
    h = make(FakeClient())
    h.dispatcher.lock_retry = 0.1
    task = asyncio.ensure_future(h.dispatcher.run(wait_for_lock=True))
    h.task = task
    await h.until(lambda: any(isinstance(e, QueueFigures) and e.busy_with for e in h.events))
    assert h.dispatcher.busy_with
    assert "pid" in h.dispatcher.busy_with
    assert h.dispatcher.running
    batch = h.enqueue(leads(2))
    await asyncio.sleep(0.3)
    assert h.states() == {"queued": 2}  # not sent while another has the queue
    holder.release()
    await h.until(lambda: h.finished(batch))
    assert h.dispatcher.busy_with is None
    assert h.states() == {"delivered": 2}


@pytest.mark.asyncio
async def test_stopping_while_waiting_for_the_queue_returns_at_once(outbox: Outbox) -> None:
    with outbox.lock_profile("p"):
        dispatcher = Dispatcher(outbox, FakeClient(), "p")
        task = asyncio.ensure_future(dispatcher.run(wait_for_lock=True))
        await asyncio.sleep(0.1)
        assert dispatcher.running
        assert dispatcher.busy_with
        started = time.monotonic()
        await dispatcher.stop()
        await asyncio.wait_for(task, 1.0)
        assert time.monotonic() - started < 0.5
        assert not dispatcher.running


# -- keeping slots busy, and controls that never stall the loop -------------------------------

_HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@pytest.mark.asyncio
async def test_controls_do_not_stall_the_loop_while_another_process_holds_the_file(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()  # nothing is answered: only the controls write
    h = make(client, max_concurrency=1)
    batch = h.enqueue(leads(6))
    h.start()
    await h.until(lambda: len(h.dispatcher.in_flight) == 1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, str(h.outbox.path), "1.5",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"locked"
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        assert h.dispatcher.cancel([6]) == 1
        assert h.dispatcher.hold([5]) == 1
        h.dispatcher.pause("Lunch")
        took = time.perf_counter() - started
        await asyncio.sleep(0.2)
        assert h.outbox.get(6).state is State.QUEUED  # type: ignore[union-attr]  # not yet
        await h.until(lambda: h.outbox.get(6).state is State.CANCELLED)  # type: ignore[union-attr]
        ticking.cancel()
    finally:
        await proc.wait()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert took < 0.3, took  # each control waited at most its short wait (50 ms), not 5 s
    assert max(gaps) < 0.3, max(gaps)
    await h.until(lambda: h.outbox.get(5).state is State.HELD)  # type: ignore[union-attr]
    client.gate.set()
    h.dispatcher.resume()
    await h.until(lambda: h.states() == {"delivered": 4, "held": 1, "cancelled": 1})
    assert not h.finished(batch)


@pytest.mark.asyncio
async def test_stopping_does_not_stall_the_loop_while_another_process_holds_the_file(
    make: Callable[..., Harness],
) -> None:
    """A stop (the window switching connections, or closing) puts the leads claimed ahead and
    the calls cut off back in line: while another process holds the file, the writer thread
    waits for it, not the loop the window shares."""
    client = FakeClient()
    client.gate = asyncio.Event()  # nothing is answered: the first call is in flight at the stop
    h = make(client, max_concurrency=4)
    h.enqueue(leads(20))
    h.start()
    await h.until(lambda: len(h.dispatcher.in_flight) == 1 and len(h.dispatcher._ready) == 1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, str(h.outbox.path), "1.5",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    ticks: list[float] = []
    try:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"locked"

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        await h.dispatcher.stop(grace=0.1)
        ticking.cancel()
    finally:
        await proc.wait()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.3, max(gaps)
    assert h.states() == {"queued": 20}  # none left "sending"
    cut_off = [x for x in h.outbox.leads() if x.unknown_outcome]
    assert len(cut_off) == 1  # the call in flight: its next answer decides
    client.gate.set()
    h.start()
    await h.until(lambda: h.states() == {"delivered": 20})


@pytest.mark.asyncio
async def test_expiry_behind_an_open_breaker_does_not_stall_the_loop(
    make: Callable[..., Harness],
) -> None:
    now = [time.time() + 5.0]  # ahead of the outbox clock: the new leads are due
    h = make(FakeClient(lambda n, f, a: OFFLINE), clock=lambda: now[0], retry_budget=30.0)
    h.enqueue(leads(3))
    h.start()
    await h.until(lambda: h.dispatcher.breaker.is_open)
    await h.until(lambda: not h.dispatcher.in_flight)
    tried = [x.id for x in h.outbox.leads() if x.attempts]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, str(h.outbox.path), "1.5",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    ticks: list[float] = []
    try:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"locked"
        now[0] += 31  # the expiry is due while the file is held
        h.dispatcher.wake()
        deadline = time.perf_counter() + 1.2
        while time.perf_counter() < deadline:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)
    finally:
        await proc.wait()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.3, max(gaps)
    await h.until(lambda: h.outbox.counts("p")[State.FAILED] >= len(tried))
    assert all(h.outbox.get(i).state is State.FAILED for i in tried)  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_the_next_call_does_not_wait_for_the_last_answer_s_commit(
    make: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    def slowed(real: Callable[..., object]) -> Callable[..., object]:
        def slow(*args: object) -> object:
            time.sleep(0.03)  # a slow disk sync for each answer
            return real(*args)

        return slow

    for name in ("record", "_record"):  # ``record`` alone, or inside a group commit
        if hasattr(Outbox, name):
            monkeypatch.setattr(Outbox, name, slowed(getattr(Outbox, name)))
    client = FakeClient()
    starts: list[float] = []
    answer = client.answer
    client.answer = lambda n, f, a: (starts.append(time.perf_counter()), answer(n, f, a))[1]
    client.delay = 0.05  # a call takes longer than a commit, as on a real PBX
    h = make(client, max_concurrency=1)
    batch = h.enqueue(leads(8))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 8}
    gaps = sorted(b - a - client.delay for a, b in itertools.pairwise(starts))
    # The next call goes while the last answer is committed: most gaps are far below a
    # commit (waiting for the answer's commit, then the claim's, would cost 60 ms each).
    assert gaps[len(gaps) // 2] < 0.02, gaps


@pytest.mark.asyncio
async def test_leads_claimed_ahead_go_back_in_line_with_their_outcome_known(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    h = make(client, max_concurrency=1)
    h.enqueue(leads(6))
    h.start()
    await h.until(lambda: len(h.dispatcher.in_flight) == 1)
    await h.until(lambda: h.outbox.counts("p")[State.SENDING] == 2)  # one flying, one ahead
    (flying,) = h.dispatcher.in_flight
    h.dispatcher.pause()
    ahead = [x for x in h.outbox.leads() if x.state is State.SENDING and x.id != flying]
    assert not ahead  # back in line at once
    await h.stop()
    by_id = {x.id: x for x in h.outbox.leads()}
    assert by_id[flying].unknown_outcome  # it was called: its answer is unknown
    assert not any(x.unknown_outcome for i, x in by_id.items() if i != flying)
    assert {x.state for x in by_id.values()} == {State.QUEUED}


@pytest.mark.asyncio
async def test_only_leads_with_our_own_external_ids_are_claimed_ahead(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    h = make(client, max_concurrency=1)
    theirs = [
        LeadInput({**item.fields, "njExternalLeadId": f"crm-{i}"}, item.phones, item.row)
        for i, item in enumerate(leads(3))
    ]
    batch = h.enqueue(theirs)
    h.start()
    await h.until(lambda: len(h.dispatcher.in_flight) == 1)
    await asyncio.sleep(0.1)
    assert h.outbox.counts("p")[State.SENDING] == 1  # their ids: marked only when called
    client.gate.set()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 3}


@pytest.mark.asyncio
async def test_a_cancelled_lead_claimed_ahead_is_never_called(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient()
    client.gate = asyncio.Event()
    h = make(client, max_concurrency=1)
    batch = h.enqueue(leads(3))
    h.start()
    await h.until(lambda: h.outbox.counts("p")[State.SENDING] == 2)
    (ahead,) = [
        x.id
        for x in h.outbox.leads()
        if x.state is State.SENDING and x.id not in h.dispatcher.in_flight
    ]
    assert h.dispatcher.cancel([ahead]) == 1
    assert h.outbox.get(ahead).state is State.CANCELLED  # type: ignore[union-attr]
    client.gate.set()
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"delivered": 2, "cancelled": 1}
    assert len(client.calls) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["hold", "stop the batch"])
async def test_a_hold_asked_for_while_an_answer_is_written_still_holds_the_lead(
    make: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    writing, written = asyncio.Event(), asyncio.Event()
    real = OutboxWriter.record

    async def slow_record(self: OutboxWriter, attempt: object, transition: object) -> object:
        writing.set()  # the call has ended; its answer ("retry later") is being committed
        await written.wait()
        return await real(self, attempt, transition)  # type: ignore[arg-type]

    monkeypatch.setattr(OutboxWriter, "record", slow_record)
    client = FakeClient(lambda n, f, a: BUSY)
    h = make(client, max_concurrency=1)
    batch = h.enqueue(leads(1))
    h.start()
    await asyncio.wait_for(writing.wait(), 10)
    (lead,) = h.outbox.leads()
    # Its answer is not recorded yet: it still counts as in flight.
    assert h.dispatcher.in_flight == {lead.id}
    if how == "hold":
        assert h.dispatcher.hold([lead.id]) == 1
    else:
        h.dispatcher._stop_batch(batch)
    written.set()
    await h.until(lambda: h.states() == {"held": 1})
    assert not h.dispatcher.in_flight
    await asyncio.sleep(0.1)  # "retry later" would have sent it again by now
    assert h.states() == {"held": 1}
    assert len(client.calls) == 1
    await h.stop()


@pytest.mark.asyncio
async def test_leads_taken_back_are_handed_over_only_once_written(
    make: Callable[..., Harness],
) -> None:
    """While another process holds the file the take-back waits; the leads are handed over
    (to the grid) only when they are cancelled for good, never before."""
    client = FakeClient()
    h = make(client, max_concurrency=1)
    h.enqueue(leads(3))
    h.dispatcher.pause("Looking")
    h.start()
    ids = [lead.id for lead in h.outbox.leads()]
    h.dispatcher.hold(ids)
    await h.until(lambda: h.states() == {"held": 3})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, str(h.outbox.path), "1.0",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    handed: list[list[int]] = []
    try:
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"locked"
        h.dispatcher.take_back(ids, lambda taken: handed.append([x.id for x in taken]))
        await asyncio.sleep(0.3)
        assert handed == []  # not written yet: nothing may go to the grid
        assert h.states() == {"held": 3}
        await h.until(lambda: handed != [])
    finally:
        await proc.wait()
    assert sorted(handed[0]) == sorted(ids)
    assert h.states() == {"cancelled": 3}
    h.dispatcher.retry(ids)
    await h.until(lambda: not h.dispatcher._later)
    assert h.states() == {"cancelled": 3}  # taken back for good


def test_a_wait_cut_short_when_its_loop_ends_leaves_no_coroutine_behind(outbox: Outbox) -> None:
    """The window's loop can stop on the very turn the dispatcher starts waiting: nothing of
    that wait may be left to warn "never awaited" once the loop is gone."""
    dispatcher = Dispatcher(outbox, FakeClient([]), "p")  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        waiting = loop.create_task(dispatcher._wait(None, poll=False))
        loop.call_soon(loop.stop)  # the loop ends after the turn in which the wait began
        loop.run_forever()
        assert not waiting.done()
        waiting.get_coro().close()  # as when the abandoned task is collected, its loop still open
        loop.close()
        del waiting
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
