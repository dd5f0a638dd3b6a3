"""The desk's services without a window: profiles, layouts, queueing, threads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from helpers.desks import make_core_desk
from helpers.memory_keyring import MemoryKeyring
from helpers.waits import until

from noojee_desk.core.delivery.dispatcher import Dispatcher
from noojee_desk.core.delivery.records import Attempt, LeadInput, State, Target, Transition
from noojee_desk.core.desk import Desk, SendingRestarted, SendingStopped
from noojee_desk.core.leads.layouts import FieldLayout, default_layout, field_spec
from noojee_desk.core.profiles.secrets import KeyStore
from noojee_desk.core.profiles.settings import Profile
from noojee_desk.sim.emulator import Emulator

LAYOUTS = {3: FieldLayout((field_spec("Name"), field_spec("FirstPhone", phone=True)))}


def make_desk(home: Path) -> Desk:
    return make_core_desk(home, emulator=Emulator(min_service=0.0, jitter=0.0), layouts=LAYOUTS)


@pytest.mark.asyncio
async def test_demo_profile_queues_and_delivers(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    desk.ensure_demo_profile()
    opened = await desk.open("Demo")
    assert opened.client is not None
    assert desk.dispatcher is not None
    queued = await desk.enqueue(
        Target(3, 42, 101),
        [LeadInput({"Name": "A", "FirstPhone": "0370100001"}, frozenset({"+61370100001"}))],
        allow_duplicates=False,
        source="test",
    )
    batch = queued.batch
    await until(lambda: desk.outbox.counts(batch_id=batch.id)[State.DELIVERED] == 1, limit=10)
    assert desk.layout_for(3).names == ("Name", "FirstPhone")
    assert desk.has_layout(3)
    assert not desk.has_layout(7)
    assert desk.layout_for(7) == default_layout()
    await desk.close()


@pytest.mark.asyncio
async def test_recent_phones_answer_from_a_worker_thread(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    desk.settings.upsert(Profile("P", server_url="https://pbx.example.com"))
    desk.settings.active_profile = "P"
    batch = desk.outbox.enqueue(
        "P", Target(3, 42, 101), [LeadInput({"Name": "A"}, frozenset({"+61370100001"}))],
        allow_duplicates=False, source="t",
    )  # fmt: skip
    lead = desk.outbox.claim_due("P", 1)[0]
    desk.outbox.record(
        Attempt(lead.id, time.time(), time.time(), "delivered", 0, "OK", 0.1),
        Transition(State.DELIVERED, code=0),
    )
    here = desk.recent_phones(["+61370100001", "+61370100002"])
    there = await asyncio.get_running_loop().run_in_executor(
        None, desk.recent_phones, ["+61370100001"]
    )
    assert set(here) == {"+61370100001"}
    assert there == {"+61370100001": here["+61370100001"]}
    assert batch.total == 1
    await desk.close()


@pytest.mark.asyncio
async def test_a_profile_without_a_key_asks_for_one(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    desk.keys.set_for_session("Other", "k")  # not this one
    desk.settings.upsert(Profile("P", server_url="https://pbx.example.com"))
    opened = await desk.open("P")
    assert opened.client is None
    assert opened.needs_key
    assert desk.dispatcher is None
    await desk.close()


@pytest.mark.asyncio
async def test_a_new_address_with_the_key_left_empty_asks_for_the_key_again(
    tmp_path: Path,
) -> None:
    desk = make_desk(tmp_path)
    desk.keys = KeyStore(service="t", backend=MemoryKeyring())
    profile = Profile("P", server_url="https://pbx.example.com")
    assert await desk.save_profile(profile, "the-real-key", session_only=False) == ""
    opened = await desk.open("P")
    assert opened.client is not None
    assert opened.client.base_url.startswith("https://pbx.example.com/")

    moved = Profile("P", server_url="https://evil.example")
    warning = await desk.save_profile(moved, None, session_only=False)
    assert "enter the API key" in warning
    opened = await desk.open("P")
    assert opened.client is None
    assert opened.needs_key
    assert await desk.keys.get("P") is None  # the old key is gone, not carried over
    await desk.close()


@pytest.mark.asyncio
async def test_a_key_given_for_one_address_is_not_used_for_another(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    desk.keys = KeyStore(service="t", backend=MemoryKeyring())
    await desk.save_profile(
        Profile("P", server_url="https://pbx.example.com"), "k-for-pbx", session_only=True
    )
    # The address changed in the settings file behind the app's back.
    desk.settings.upsert(Profile("P", server_url="https://evil.example"))
    opened = await desk.open("P")
    assert opened.client is None
    assert opened.needs_key
    await desk.close()


@pytest.mark.asyncio
async def test_a_plain_file_password_store_keeps_the_key_for_the_session_only(
    tmp_path: Path,
) -> None:
    backend = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})()
    desk = make_desk(tmp_path)
    desk.keys = KeyStore(service="t", backend=backend)
    profile = Profile("P", server_url="https://pbx.example.com")
    warning = await desk.save_profile(profile, "the-real-key", session_only=False)
    assert "writes keys to a plain file; the key is kept for this session only" in warning
    assert backend.entries == {}
    assert desk.keys.is_session_only("P")
    opened = await desk.open("P")
    assert opened.client is not None  # usable now, from memory
    assert desk.settings.profile("P") is not None
    assert "the-real-key" not in desk.paths.settings.read_text(encoding="utf-8")

    desk.settings.allow_plaintext_keyring = True  # the user opted in
    assert await desk.save_profile(profile, "the-real-key", session_only=False) == ""
    assert backend.entries[("t", "P")] == "the-real-key"
    assert not desk.keys.is_session_only("P")
    await desk.close()


def phone_lead(i: int) -> LeadInput:
    return LeadInput(
        {"Name": f"P {i}", "FirstPhone": f"0370{i:06d}"}, frozenset({f"+61370{i:06d}"})
    )


@pytest.mark.asyncio
async def test_enqueue_leaves_out_what_was_delivered_to_the_target_unless_sent_again(
    tmp_path: Path,
) -> None:
    """The window's way in: a re-paste queues only the rows not delivered to that target yet;
    ``delivered_before`` tells which beforehand (from any thread) without queueing anything."""
    desk = make_desk(tmp_path)
    desk.ensure_demo_profile()
    await desk.open("Demo")
    target = Target(3, 42, 101)
    try:
        first = (await desk.enqueue(target, [phone_lead(i) for i in range(3)],
                                    allow_duplicates=False, source="a")).batch  # fmt: skip
        await until(lambda: desk.outbox.counts(batch_id=first.id)[State.DELIVERED] == 3, limit=10)
        again = [phone_lead(i) for i in range(4)]
        fields = [lead.fields for lead in again]
        before = desk.outbox.count()
        here = desk.delivered_before(target, fields)
        there = await asyncio.get_running_loop().run_in_executor(
            None, desk.delivered_before, target, fields
        )
        assert set(here) == {0, 1, 2}
        assert here == there
        assert all(d.delivered_at for d in here.values())
        assert desk.delivered_before(Target(3, 43, 101), fields) == {}  # another campaign
        assert desk.outbox.count() == before  # a read only

        skipped = await desk.enqueue(target, again, allow_duplicates=False, source="b")
        assert skipped.batch.total == 1
        assert set(skipped.skipped) == {0, 1, 2}
        assert skipped.skipped[0].lead_id == first.first_lead_id
        resent = await desk.enqueue(
            target, again, allow_duplicates=False, source="c", send_again=True
        )
        assert resent.batch.total == 4
        assert not resent.skipped
        # A big paste is written by a worker thread, and skips the same way.
        big = [phone_lead(i) for i in (0, 1, 2, *range(100, 347))]
        bulk = await desk.enqueue(target, big, allow_duplicates=False, source="d")
        assert set(bulk.skipped) == {0, 1, 2}
        assert bulk.batch.total == 247
    finally:
        await desk.close()


def _dispatchers_fail(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """A bug in the dispatcher's loop for the next ``times`` runs: an exception it does not
    expect, the way a programming error would end it. Returns the count of failures so far."""
    failed = [0]
    launch = Dispatcher._launch

    async def buggy(self: Dispatcher) -> None:
        if failed[0] < times:
            failed[0] += 1
            raise RuntimeError("a bug in the dispatcher")
        await launch(self)

    monkeypatch.setattr(Dispatcher, "_launch", buggy)
    return failed


@pytest.mark.asyncio
async def test_a_dispatcher_that_dies_is_logged_said_and_started_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = make_desk(tmp_path)
    desk.restart_waits = (0.3, 0.6)
    heard: list[object] = []
    desk.subscribe(heard.append)
    _dispatchers_fail(monkeypatch, times=1)
    desk.ensure_demo_profile()
    await desk.open("Demo")
    first = desk.dispatcher
    await until(lambda: any(isinstance(e, SendingStopped) for e in heard), what="stopped")
    stopped = next(e for e in heard if isinstance(e, SendingStopped))
    assert stopped.restart_in == 0.3
    assert "RuntimeError: a bug in the dispatcher" in stopped.message
    assert desk.queue_problem == stopped.message
    failure = next(r for r in caplog.records if "stopped on an unexpected error" in r.message)
    assert failure.exc_info is not None  # the traceback is in the log
    await until(lambda: any(isinstance(e, SendingRestarted) for e in heard), what="restarted")
    assert desk.dispatcher is not first
    assert desk.queue_problem == ""
    queued = await desk.enqueue(
        Target(3, 42, 101),
        [LeadInput({"Name": "A", "FirstPhone": "0370100001"}, frozenset({"+61370100001"}))],
        allow_duplicates=False,
        source="test",
    )
    await until(lambda: desk.outbox.counts(batch_id=queued.batch.id)[State.DELIVERED] == 1)
    await desk.close()


@pytest.mark.asyncio
async def test_a_dispatcher_that_keeps_dying_is_started_again_with_growing_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a hot loop: the waits grow to the last of ``restart_waits`` and stay there; and
    closing the desk during a wait ends it at once, starting no dispatcher."""
    desk = make_desk(tmp_path)
    desk.restart_waits = (0.1, 0.3, 0.5)
    heard: list[object] = []
    desk.subscribe(heard.append)
    failed = _dispatchers_fail(monkeypatch, times=1000)
    desk.ensure_demo_profile()
    await desk.open("Demo")
    began = time.monotonic()
    await until(lambda: sum(isinstance(e, SendingStopped) for e in heard) == 5, limit=20)
    took = time.monotonic() - began
    waits = [e.restart_in for e in heard if isinstance(e, SendingStopped)]
    assert waits == [0.1, 0.3, 0.5, 0.5, 0.5]
    assert took >= 0.1 + 0.3 + 0.5 + 0.5  # four waits before the fifth failure
    closing = time.monotonic()
    await desk.close()
    assert time.monotonic() - closing < 0.4  # the wait of 0.5 s is not sat out
    restarts = sum(isinstance(e, SendingRestarted) for e in heard)
    await asyncio.sleep(0.7)
    assert sum(isinstance(e, SendingRestarted) for e in heard) == restarts  # none after close
    assert failed[0] == restarts + 1
    assert desk.dispatcher is None


@pytest.mark.asyncio
async def test_a_dispatcher_started_again_keeps_the_persons_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = make_desk(tmp_path)
    desk.restart_waits = (0.2,)
    heard: list[object] = []
    desk.subscribe(heard.append)
    _dispatchers_fail(monkeypatch, times=1)
    desk.ensure_demo_profile()
    await desk.open("Demo")
    assert desk.dispatcher is not None
    desk.dispatcher.pause("Lunch")
    await until(lambda: any(isinstance(e, SendingRestarted) for e in heard), what="restarted")
    assert desk.dispatcher.paused_reason == "Lunch"
    queued = await desk.enqueue(
        Target(3, 42, 101),
        [LeadInput({"Name": "A", "FirstPhone": "0370100001"}, frozenset({"+61370100001"}))],
        allow_duplicates=False,
        source="test",
    )
    await asyncio.sleep(0.5)
    assert desk.outbox.counts(batch_id=queued.batch.id)[State.QUEUED] == 1  # still paused
    desk.dispatcher.resume()
    await until(lambda: desk.outbox.counts(batch_id=queued.batch.id)[State.DELIVERED] == 1)
    await desk.close()
