"""A set-up mistake costs a handful of calls, not a batch: the same refusal five times stops it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from helpers.dispatch import FakeClient, Harness, leads, rejected

from noojee_desk.core.delivery import codes
from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.outcome import Kind, Outcome, RetryReason
from noojee_desk.core.delivery.records import (
    Attempt,
    Lead,
    LeadInput,
    LeadQuery,
    State,
    Target,
    Transition,
)
from noojee_desk.core.delivery.setup import STOP_AFTER, SetupStopped, mistake_of
from noojee_desk.sim.emulator import Emulator
from noojee_desk.sim.server import SimServer

REFERRALS = Target(18, 80, 200)  # only contact_a is dialled; referrer_phone only looks like it


def test_which_answers_point_at_set_up() -> None:
    assert mistake_of(rejected(codes.NO_PHONE_FIELDS)) == "102"
    assert mistake_of(rejected(codes.INVALID_TIMEZONE)) == "111"
    assert mistake_of(Outcome(Kind.REJECTED, code=4711)) == "code 4711"
    target = Outcome(
        Kind.RETRY_LATER,
        code=103,
        message="EXCEPTION: fCampaignId is missing or not a number",
        retry_reason=RetryReason.SERVER_ERROR,
    )
    assert mistake_of(target) == "target"
    # Answers about one lead's data never stop a batch.
    for code in (codes.DNC, codes.DUPLICATE, codes.IMPORT_BUT_NOCHANGE):
        assert mistake_of(rejected(code)) is None
    assert mistake_of(Outcome(Kind.RETRY_LATER, code=103, message="EXCEPTION: import")) is None


@pytest.mark.asyncio
async def test_five_identical_refusals_hold_the_rest_of_the_batch(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient(lambda n, f, a: rejected(codes.NO_PHONE_FIELDS))
    h = make(client)
    batch = h.enqueue(leads(200))
    h.start()
    await h.until(lambda: any(isinstance(e, SetupStopped) for e in h.events))
    await h.until(lambda: h.states().get("rejected") == len(client.calls))
    assert len(client.calls) == STOP_AFTER  # the limit starts at one call, then one at a time
    assert client.max_running == 1  # one at a time once the first refusal came
    counts = h.states()
    assert counts["rejected"] == len(client.calls)
    assert counts["held"] == 200 - len(client.calls)  # nothing lost, nothing else sent
    stopped = next(e for e in h.events if isinstance(e, SetupStopped))
    assert stopped.batch_id == batch
    assert "102" in stopped.sentence
    assert "FirstPhone" in stopped.sentence  # the field that held the number
    assert "Fields" in stopped.fix


@pytest.mark.asyncio
async def test_a_delivery_first_means_the_refusals_are_about_data(
    make: Callable[..., Harness],
) -> None:
    def answer(n: int, fields: dict[str, str], allow: bool) -> Outcome:
        return rejected(codes.NO_PHONE_FIELDS) if n > 1 else Outcome(Kind.DELIVERED, code=0)

    client = FakeClient(answer)
    h = make(client)
    batch = h.enqueue(leads(30))
    h.start()
    await h.until(lambda: h.finished(batch))
    assert not any(isinstance(e, SetupStopped) for e in h.events)
    assert h.states() == {"delivered": 1, "rejected": 29}


@pytest.mark.asyncio
async def test_send_anyway_releases_the_batch_and_never_stops_it_again(
    make: Callable[..., Harness],
) -> None:
    client = FakeClient(lambda n, f, a: rejected(codes.INVALID_TIMEZONE))
    h = make(client)
    batch = h.enqueue(leads(40))
    h.start()
    await h.until(lambda: any(isinstance(e, SetupStopped) for e in h.events))
    await h.until(lambda: not h.dispatcher.in_flight)
    released = h.dispatcher.send_anyway(batch)
    assert released == h.outbox.counts("p").as_dict()["queued"] > 0
    await h.until(lambda: h.finished(batch))
    assert h.states() == {"rejected": 40}
    assert sum(isinstance(e, SetupStopped) for e in h.events) == 1


def _referrals(count: int, phone_field: str) -> list[LeadInput]:
    return [
        LeadInput({"full_name": f"Person {i}", phone_field: f"04{i:08d}"}, frozenset(), i + 1)
        for i in range(count)
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("record_delay", [0.0, 0.2], ids=["answers-recorded-at-once", "slow-disk"])
async def test_a_wrong_phone_field_costs_at_most_ten_calls_then_all_land_once(
    make: Callable[..., Harness],
    pbx: tuple[Emulator, SimServer],
    monkeypatch: pytest.MonkeyPatch,
    record_delay: float,
) -> None:
    emulator, server = pbx
    if record_delay:
        # A loaded machine: the writer thread commits each refusal late. A lead's call is over
        # (it is no longer in flight) before its answer is committed, so the counts below must
        # wait for the answers, not for the calls.
        record = Outbox.record

        def slow_record(box: Outbox, attempt: Attempt, transition: Transition) -> Lead:
            if transition.state is State.REJECTED:
                time.sleep(record_delay)
            return record(box, attempt, transition)

        monkeypatch.setattr(Outbox, "record", slow_record)
    async with NoojeeClient(server.url, "demo-key") as client:
        h = make(client)
        outbox = h.outbox
        wrong = outbox.enqueue(
            "p", REFERRALS, _referrals(200, "referrer_phone"), allow_duplicates=False, source="t"
        )
        h.start()
        await h.until(lambda: any(isinstance(e, SetupStopped) for e in h.events), within=30)
        sending = LeadQuery(batch_id=wrong.id, states=frozenset({State.SENDING}))
        # Every answer recorded: a lead stays "sending" from its claim until its answer commits.
        await h.until(lambda: not h.dispatcher.in_flight and not outbox.leads(sending), within=30)
        assert emulator.state()["insert_calls_by_template"]["18"] <= 10
        held = outbox.leads(LeadQuery(batch_id=wrong.id, states=frozenset({State.HELD})))
        rejected_ = outbox.counts(batch_id=wrong.id).as_dict()["rejected"]
        assert len(held) + rejected_ == 200  # nothing lost
        # The fix: the same people again with the number in the dialled field; the held leads
        # are cancelled (taken back), so each person goes out once.
        h.dispatcher.cancel(lead.id for lead in held)
        fixed = outbox.enqueue(
            "p", REFERRALS, _referrals(200, "contact_a"), allow_duplicates=False, source="t"
        )
        h.dispatcher.wake()
        await h.until(lambda: h.finished(fixed.id), within=60)
    landed = [lead for lead in emulator.state()["leads"] if lead["template_id"] == 18]
    assert len(landed) == 200
    assert len({lead["fields"]["contact_a"] for lead in landed}) == 200
    assert outbox.counts(batch_id=fixed.id).as_dict()["delivered"] == 200
    assert STOP_AFTER == 5


@pytest.mark.asyncio
async def test_a_finished_batch_with_one_refusal_does_not_slow_the_next_one(
    make: Callable[..., Harness],
) -> None:
    def answer(n: int, fields: dict[str, str], allow: bool) -> Outcome:
        if fields["Name"] == "P0":
            return rejected(codes.NO_PHONE_FIELDS)
        return Outcome(Kind.DELIVERED, code=0, latency=0.01)

    client = FakeClient(answer)
    h = make(client)
    first = h.enqueue(leads(1))
    h.start()
    await h.until(lambda: h.finished(first))
    assert not h.dispatcher.setup.suspect
    second = h.enqueue(leads(60, start=1))
    await h.until(lambda: h.finished(second))
    assert client.max_running > 1  # the limit grew again: no batch is suspect any more
