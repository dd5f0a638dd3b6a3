"""The outbox: schema, enqueue, claims, attempt log, controls, queries and durability."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.queue_files import queue_file_at

from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import (
    TAKEN_BACK,
    Attempt,
    LeadInput,
    LeadQuery,
    OutboxBusy,
    OutboxDamaged,
    OutboxError,
    State,
    Target,
    Transition,
    new_external_ids,
)
from noojee_desk.core.delivery.schema import MIGRATIONS, SCHEMA_VERSION, content_key
from noojee_desk.core.paths import resolve
from noojee_desk.core.pbx import EXTERNAL_ID_FIELD

TARGET = Target(3, 42, 101)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lead(i: int, **extra: str) -> LeadInput:
    fields = {"Name": f"Person {i}", "FirstPhone": f"04{i:08d}", **extra}
    return LeadInput(fields, frozenset({f"+614{i:08d}"}), row=i + 1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Outbox:
    box = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    yield box
    box.close()


def deliver(box: Outbox, lead_id: int, at: float) -> None:
    box.record(
        Attempt(lead_id, at, at, "delivered", 0, "OK", 0.1),
        Transition(State.DELIVERED, code=0, message="OK"),
    )


def test_schema_is_versioned_and_wal(outbox: Outbox) -> None:
    assert outbox.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(outbox.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.parametrize("parked", [float("inf"), 1e300, 1_000_000.0 + 3 * 86400])
def test_leads_an_older_version_parked_for_ever_are_due_again_on_open(
    tmp_path: Path, clock: Clock, parked: float
) -> None:
    box = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    batch = box.enqueue("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="x")
    waiting = clock.now + 600.0  # a wait this version gives: left alone
    ids = box.lead_ids(LeadQuery(profile="p"))
    box.close()
    db = sqlite3.connect(tmp_path / "outbox.sqlite3")
    with db:
        db.execute("UPDATE leads SET next_attempt_at = ? WHERE id = ?", (parked, ids[0]))
        db.execute("UPDATE leads SET next_attempt_at = ? WHERE id = ?", (waiting, ids[1]))
    db.close()
    box = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    try:
        assert box.earliest_due("p") == clock.now
        assert box.next_retry_at("p", clock.now) == waiting
        assert box.counts("p")[State.QUEUED] == 2
        assert batch.total == 2
    finally:
        box.close()


def test_the_default_file_is_in_the_data_dir(isolated_home: Path) -> None:
    path = resolve().outbox
    with Outbox(path) as box:
        assert box.path == path
    assert path.is_relative_to(isolated_home)
    assert path.exists()


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    Outbox(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(OutboxError, match="newer Noojee Desk") as refused:
        Outbox(path)
    assert not isinstance(refused.value, OutboxDamaged)  # never offered for setting aside


def test_a_file_that_is_not_a_database_is_refused_not_crashed(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(OutboxDamaged, match="damaged"):
        Outbox(path)


def test_a_locked_file_is_busy_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    Outbox(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(OutboxError, match="cannot be used right now") as refused:
            Outbox(path, busy_timeout=0.05)
        assert not isinstance(refused.value, OutboxDamaged)
    finally:
        holder.close()


def test_a_failed_commit_leaves_no_transaction_behind(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        with outbox.transaction() as write:
            write.execute("CREATE TABLE probe (x INTEGER PRIMARY KEY)")
            write.execute(
                "CREATE TABLE later (x INTEGER REFERENCES probe(x) DEFERRABLE INITIALLY DEFERRED)"
            )
        with pytest.raises(sqlite3.IntegrityError), outbox.transaction() as write:
            write.execute("INSERT INTO later VALUES (7)")  # fails only at COMMIT
        assert not outbox.in_transaction
        with outbox.transaction() as write:  # the next write works
            write.execute("INSERT INTO probe VALUES (1)")
        assert not outbox.in_transaction
        with outbox.transaction() as read:
            assert read.execute("SELECT COUNT(*) FROM probe").fetchone() == (1,)
            assert read.execute("SELECT COUNT(*) FROM later").fetchone() == (0,)


def test_a_file_of_schema_1_opens_migrated_and_keeps_its_leads(tmp_path: Path) -> None:
    """A queue file the previous version made (schema 1, leads queued): it opens as schema 2,
    keeps its leads, and takes the new ``duplicate`` state."""
    path = tmp_path / "o.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO batches (id, profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, source, total, first_lead_id, last_lead_id, created_at) "
        "VALUES (1, 'p', 3, 42, 101, 0, 'x', 1, 1, 1, 0)"
    )
    db.execute(
        "INSERT INTO leads (id, batch_id, profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, fields, external_id, external_id_generated, state, "
        "next_attempt_at, unknown_outcome, created_at, updated_at) VALUES "
        "(1, 1, 'p', 3, 42, 101, 0, '{\"Name\": \"A\"}', 'nd-x', 1, 'queued', 0, 1, 0, 0)"
    )
    db.close()
    with Outbox(path) as box:
        assert box.schema_version == SCHEMA_VERSION == 5
        (claimed,) = box.claim_due("p", 1)
        assert claimed.fields == {"Name": "A"}
        assert claimed.unknown_outcome
        box.record(
            Attempt(claimed.id, 1.0, 1.0, "rejected", 105, "DUPLICATE", 0.1),
            Transition(State.DUPLICATE, code=105),
        )
        assert box.counts("p")[State.DUPLICATE] == 1
    with Outbox(path) as box:
        assert box.get(1).state is State.DUPLICATE  # type: ignore[union-attr]


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        batch = box.enqueue("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="x")
    with Outbox(path) as box:
        assert box.schema_version == SCHEMA_VERSION
        assert [x.id for x in box.leads()] == [batch.first_lead_id, batch.last_lead_id]


def test_enqueue_generates_unique_short_external_ids(outbox: Outbox) -> None:
    batch = outbox.enqueue(
        "p", TARGET, [lead(i) for i in range(500)], allow_duplicates=False, source="paste"
    )
    leads = outbox.leads(LeadQuery(batch_id=batch.id))
    ids = [x.external_id for x in leads]
    assert len(set(ids)) == 500
    assert all(re.fullmatch(r"nd-[a-z2-7]{16}", x) for x in ids)
    assert all(x.external_id_generated for x in leads)
    assert leads[0].fields_to_send()[EXTERNAL_ID_FIELD] == leads[0].external_id
    assert len(set(new_external_ids(10_000))) == 10_000


def test_a_mapped_external_id_is_kept_and_an_empty_one_is_generated(outbox: Outbox) -> None:
    outbox.enqueue(
        "p",
        TARGET,
        [lead(1, njExternalLeadId=" CRM-77 "), lead(2, njExternalLeadId="")],
        allow_duplicates=False,
        source="file",
    )
    first, second = outbox.leads()
    assert first.external_id == "CRM-77"
    assert not first.external_id_generated
    assert EXTERNAL_ID_FIELD not in first.fields
    assert first.fields_to_send()[EXTERNAL_ID_FIELD] == "CRM-77"
    assert second.external_id.startswith("nd-")
    assert second.external_id_generated


def test_enqueue_stores_everything_the_queue_view_shows(outbox: Outbox, clock: Clock) -> None:
    batch = outbox.enqueue(
        "p", TARGET, [lead(7, City="Ballarat")], allow_duplicates=True, source="form"
    )
    assert batch.total == 1
    assert batch.source == "form"
    assert outbox.batch(batch.id) == batch
    (stored,) = outbox.leads()
    assert stored.batch_id == batch.id
    assert stored.row == 8
    assert stored.profile == "p"
    assert stored.target == TARGET
    assert stored.allow_duplicates
    assert stored.fields == {"Name": "Person 7", "FirstPhone": "0400000007", "City": "Ballarat"}
    assert stored.state is State.QUEUED
    assert stored.attempts == 0
    assert stored.next_attempt_at == clock.now
    assert stored.created_at == stored.updated_at == clock.now


def test_enqueue_is_one_transaction(outbox: Outbox) -> None:
    bad = LeadInput({"Name": "x", "FirstPhone": "0400000000"}, frozenset({object()}), 2)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.Error):
        outbox.enqueue("p", TARGET, [lead(1), bad], allow_duplicates=False, source="x")
    assert outbox.count() == 0
    assert outbox.batches() == []


def test_claim_marks_due_leads_sending_oldest_first(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("p", TARGET, [lead(i) for i in range(5)], allow_duplicates=False, source="x")
    outbox.enqueue("other", TARGET, [lead(9)], allow_duplicates=False, source="x")
    first = outbox.claim_due("p", 2)
    assert [x.id for x in first] == [1, 2]
    assert all(x.state is State.SENDING for x in first)
    assert first[0].first_attempt_at == clock.now
    assert outbox.get(1).state is State.SENDING  # type: ignore[union-attr]
    rest = outbox.claim_due("p", 10)
    assert [x.id for x in rest] == [3, 4, 5]
    assert outbox.claim_due("p", 10) == []
    assert outbox.claim_due("p", 0) == []


def test_claim_skips_leads_not_due_yet(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="x")
    (one,) = outbox.claim_due("p", 1)
    outbox.record(
        Attempt(one.id, clock.now, clock.now, "retry_later", 103, "EXCEPTION", 0.1),
        Transition(State.QUEUED, next_attempt_at=clock.now + 30, code=103),
    )
    assert [x.id for x in outbox.claim_due("p", 5)] == [2]
    assert outbox.earliest_due("p") == clock.now + 30
    assert outbox.next_retry_at("p", clock.now) == clock.now + 30
    clock.now += 31
    assert [x.id for x in outbox.claim_due("p", 5)] == [one.id]


def test_record_logs_the_attempt_and_moves_the_lead(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("p", TARGET, [lead(1)], allow_duplicates=False, source="x")
    (one,) = outbox.claim_due("p", 1)
    started = clock.now
    clock.now += 0.2
    updated = outbox.record(
        Attempt(
            one.id, started, clock.now, "rejected", 104, "DNC https://x/y?apiKey=secret", 0.2, 400
        ),
        Transition(State.REJECTED, code=104, message="DNC", sentence="On the DNC list.", fix="-"),
    )
    assert updated.state is State.REJECTED
    assert updated.attempts == 1
    assert updated.last_code == 104
    assert updated.sentence == "On the DNC list."
    assert updated.last_attempt_at == clock.now
    (logged,) = outbox.attempts(one.id)
    assert logged.code == 104
    assert logged.http_status == 400
    assert "secret" not in logged.message
    assert logged.latency == pytest.approx(0.2)


def test_interrupted_sends_come_back_flagged_unknown(outbox: Outbox) -> None:
    outbox.enqueue("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="x")
    outbox.claim_due("p", 1)
    assert outbox.recover_interrupted("p") == [1]
    first, second = outbox.leads()
    assert first.state is State.QUEUED
    assert first.unknown_outcome
    assert not second.unknown_outcome
    assert outbox.recover_interrupted("p") == []


def test_release_requeues_only_sending_leads(outbox: Outbox) -> None:
    outbox.enqueue("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="x")
    outbox.claim_due("p", 1)
    released = outbox.release([1, 2], unknown_outcome=True)
    assert [x.id for x in released] == [1]
    assert released[0].unknown_outcome


def test_controls_move_only_the_leads_they_may(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("p", TARGET, [lead(i) for i in range(6)], allow_duplicates=False, source="x")
    claimed = outbox.claim_due("p", 2)
    outbox.record(
        Attempt(1, clock.now, clock.now, "rejected", 105, "DUPLICATE", 0.1),
        Transition(State.REJECTED, code=105),
    )
    outbox.record(
        Attempt(2, clock.now, clock.now, "rejected", 104, "DNC", 0.1),
        Transition(State.REJECTED, code=104),
    )
    assert len(claimed) == 2
    assert [x.id for x in outbox.hold([3, 1])] == [3]
    assert [x.id for x in outbox.cancel([4, 1, 3])] == [3, 4]  # 1 is rejected: not cancellable
    dup = outbox.requeue_duplicates([1, 2])
    assert [x.id for x in dup] == [1]
    assert dup[0].allow_duplicates
    assert dup[0].state is State.QUEUED
    again = outbox.requeue([2, 3, 5])
    assert sorted(x.id for x in again) == [2, 3]  # 5 is queued already
    assert all(x.budget_from is None for x in again)


def test_expire_fails_only_leads_tried_before_the_cutoff(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="x")
    (one,) = outbox.claim_due("p", 1)
    outbox.record(
        Attempt(one.id, clock.now, clock.now, "retry_later", None, "refused", 0.0),
        Transition(State.QUEUED, next_attempt_at=clock.now + 60),
    )
    clock.now += 100
    expired = outbox.expire("p", clock.now - 50, "gave up")
    assert [x.id for x in expired] == [one.id]
    assert expired[0].state is State.FAILED
    assert outbox.get(2).state is State.QUEUED  # type: ignore[union-attr]


def test_queries_filter_search_and_page(outbox: Outbox) -> None:
    first = outbox.enqueue(
        "p", TARGET, [lead(i) for i in range(30)], allow_duplicates=False, source="x"
    )
    second = outbox.enqueue(
        "p", TARGET, [lead(100, Notes="50% off_deal")], allow_duplicates=False, source="y"
    )
    outbox.claim_due("p", 3)
    assert outbox.count(LeadQuery(batch_id=first.id)) == 30
    assert outbox.count(LeadQuery(states=frozenset({State.SENDING}))) == 3
    page = outbox.leads(LeadQuery(batch_id=first.id), offset=10, limit=5)
    assert [x.row for x in page] == [11, 12, 13, 14, 15]
    assert [x.batch_id for x in outbox.leads(LeadQuery(search="50% off_"))] == [second.id]
    assert outbox.leads(LeadQuery(search="5_% off")) == []  # wildcards are literal
    ext = outbox.leads()[4].external_id
    assert [x.external_id for x in outbox.leads(LeadQuery(search=ext))] == [ext]
    assert len(list(outbox.iter_leads(LeadQuery(profile="p"), page=7))) == 31
    assert outbox.count(LeadQuery(lead_ids=[1, 2, 999])) == 2
    counts = outbox.counts("p")
    assert counts[State.SENDING] == 3
    assert counts[State.QUEUED] == 28
    assert counts.total == 31
    assert counts.open == 31
    assert outbox.counts(batch_id=second.id).as_dict()["queued"] == 1
    assert [b.id for b in outbox.batches("p")] == [second.id, first.id]


def test_an_interrupted_batch_can_be_found_by_its_key(outbox: Outbox) -> None:
    batch = outbox.enqueue("p", TARGET, [lead(1)], allow_duplicates=False, source="f", key="k1")
    assert outbox.find_open_batch("p", "k1") == batch
    assert outbox.find_open_batch("p", "k2") is None
    assert outbox.find_open_batch("q", "k1") is None
    outbox.cancel([batch.first_lead_id or 0])
    assert outbox.find_open_batch("p", "k1") is None


def test_recent_phones_are_the_numbers_delivered_recently(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("p", TARGET, [lead(i) for i in range(4)], allow_duplicates=False, source="x")
    for one in outbox.claim_due("p", 3):
        deliver(outbox, one.id, clock.now - 86400 * (one.id - 1) * 20)  # 0, 20 and 40 days ago
    clock.now += 3 * 86400
    found = outbox.recent_phones([f"+614{i:08d}" for i in range(5)], days=30)
    assert found == {
        "+61400000000": "delivered 3 days ago",
        "+61400000001": "delivered 23 days ago",
    }
    assert outbox.recent_phones(["+61400000000"], days=2) == {}
    queued = outbox.queued_phones(["+61400000003", "+61400000000"])
    assert queued == {"+61400000003": 4}


def test_one_sender_per_profile(outbox: Outbox) -> None:
    first = outbox.lock_profile("p")
    first.acquire()
    try:
        with pytest.raises(OutboxBusy, match="is already sending"):
            outbox.lock_profile("p").acquire()
        with outbox.lock_profile("other"):
            pass
    finally:
        first.release()
    with outbox.lock_profile("p") as again:
        assert again.held


def test_a_killed_process_loses_nothing_it_reported(tmp_path: Path) -> None:
    """Commits are durable: what enqueue returned survives SIGKILL right after."""
    path = tmp_path / "o.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys, time
        from noojee_desk.core.delivery.outbox import Outbox, LeadInput, Target
        box = Outbox({str(path)!r})
        leads = [LeadInput({{"FirstPhone": "04%08d" % i}}, frozenset(), i) for i in range(2000)]
        batch = box.enqueue("p", Target(3, 42, 101), leads, allow_duplicates=False, source="x")
        box.claim_due("p", 5)
        print(batch.id, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "1"
    finally:
        proc.kill()
        proc.wait()
    with Outbox(path) as box:
        assert box.count() == 2000
        assert box.counts("p")[State.SENDING] == 5
        assert box.recover_interrupted("p") == [1, 2, 3, 4, 5]


# -- exactly once across runs -------------------------------------------------------------------


def test_the_same_content_has_the_same_key_whatever_the_order_and_spaces() -> None:
    one = content_key({"Name": "Ann  Lee", "FirstPhone": "0412000001", "City": ""})
    assert one == content_key({"FirstPhone": " 0412000001", "Name": "Ann Lee"})
    assert one == content_key(
        {"Name": "Ann Lee", "FirstPhone": "0412000001", EXTERNAL_ID_FIELD: "x"}
    )
    assert one != content_key({"Name": "Ann Lee", "FirstPhone": "0412000002"})
    assert one != content_key({"Name": "Ann Lee", "City": "0412000001"})


def test_queue_once_resumes_an_open_batch_and_gives_back_a_finished_one(
    outbox: Outbox, clock: Clock
) -> None:
    first = outbox.queue_once(
        "p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="a", key="k"
    )
    assert first.how == "new"
    assert first.batch.total == 2
    again = outbox.queue_once(
        "p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="a", key="k"
    )
    assert (again.how, again.batch.id) == ("open", first.batch.id)
    assert outbox.find_open_batch("p", "k") == again.batch
    assert outbox.count() == 2
    for item in outbox.leads():
        deliver(outbox, item.id, clock.now)
    assert outbox.find_open_batch("p", "k") is None
    done = outbox.queue_once(
        "p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="a", key="k"
    )
    assert (done.how, done.batch.id) == ("finished", first.batch.id)
    other = Target(3, 42, 102)
    elsewhere = outbox.queue_once(
        "p", other, [lead(1)], allow_duplicates=False, source="a", key="k"
    )
    assert elsewhere.how == "new"
    assert not elsewhere.skipped
    assert outbox.count() == 3


def test_rows_delivered_before_are_left_out_of_a_new_batch(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue("p", TARGET, [lead(1), lead(2), lead(3)], allow_duplicates=False, source="a")
    for item in outbox.leads()[:2]:
        deliver(outbox, item.id, clock.now - 86400)
    edited = [lead(1), lead(2, City="Perth"), lead(3), lead(4)]
    queued = outbox.queue_once("p", TARGET, edited, allow_duplicates=False, source="b", key="k2")
    assert queued.how == "new"
    assert sorted(queued.skipped) == [0]  # row 2 was edited, row 3 never delivered
    assert queued.skipped[0].delivered_at == clock.now - 86400
    assert queued.skipped[0].external_id == outbox.leads()[0].external_id
    rows = [item.row for item in outbox.leads(LeadQuery(batch_id=queued.batch.id))]
    assert rows == [3, 4, 5]
    assert queued.batch.total == 3
    assert outbox.queued_phones(["+61400000001", "+61400000004"]) == {"+61400000004": 6}
    matches = outbox.delivered_matches("p", TARGET, [lead(1).fields, lead(3).fields])
    assert matches[0] is not None
    assert matches[1] is None
    assert outbox.delivered_matches("other", TARGET, [lead(1).fields]) == [None]
    everything = outbox.queue_once(
        "p", TARGET, edited, allow_duplicates=True, source="c", key="k3", skip_delivered=False
    )
    assert everything.batch.total == 4
    assert not everything.skipped


def test_a_queue_file_of_schema_1_is_migrated_and_its_deliveries_known(tmp_path: Path) -> None:
    """A file as the previous release wrote it: the content of its leads is keyed on opening."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute(
        "INSERT INTO batches (profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, source, total, created_at) VALUES ('p', 3, 42, 101, 0, 'x', 1, 5)"
    )
    body = '{"Name":"Person 1","FirstPhone":"0400000001"}'
    db.execute(
        "INSERT INTO leads (batch_id, profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, fields, external_id, external_id_generated, state, next_attempt_at, "
        f"delivered_at, created_at, updated_at) VALUES (1, 'p', 3, 42, 101, 0, '{body}', "
        "'nd-old', 1, 'delivered', 5, 7, 5, 7)"
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Outbox(path) as box:
        assert box.schema_version == SCHEMA_VERSION == 5
        queued = box.queue_once("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="y")
        assert sorted(queued.skipped) == [0]
        assert queued.skipped[0].external_id == "nd-old"
        plan = box._db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM leads WHERE profile = 'p' AND content_key = 'x'"
        ).fetchall()
        assert "leads_content" in str(plan)


def test_the_busy_message_says_who_holds_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    script = textwrap.dedent(
        f"""
        import time
        from noojee_desk.core.delivery import locks, outbox
        locks.PROGRAM = "'noojee-desk send'"
        box = outbox.Outbox({str(path)!r})
        lock = box.lock_profile("p")
        lock.acquire()
        print("held", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        with Outbox(path) as box, pytest.raises(OutboxBusy) as caught:
            box.lock_profile("p").acquire()
        assert f"'noojee-desk send' (pid {proc.pid}, since " in str(caught.value)
        assert caught.value.holder.startswith("'noojee-desk send' (pid ")
    finally:
        proc.kill()
        proc.wait()
    with Outbox(path) as box, box.lock_profile("p") as lock:
        assert lock.held  # the holder's death freed it


def test_delivered_by_key_reads_which_contents_went_to_the_target(
    outbox: Outbox, clock: Clock
) -> None:
    """A read for the question before queueing: by content key, the earliest delivery to this
    target (not to another target, not another profile's, not a lead still queued)."""
    batch = outbox.enqueue("p", TARGET, [lead(1), lead(2)], allow_duplicates=False, source="a")
    first = batch.first_lead_id
    assert first is not None
    deliver(outbox, first, 2_000.0)
    outbox.enqueue("p", TARGET, [lead(1)], allow_duplicates=True, source="b")
    deliver(outbox, first + 2, 3_000.0)  # the same content again, later
    outbox.enqueue("p", Target(3, 43, 101), [lead(3)], allow_duplicates=False, source="c")
    deliver(outbox, first + 3, 4_000.0)  # delivered, but to another campaign
    keys = [content_key(lead(i).fields) for i in (1, 2, 3)]
    before = outbox.count()
    found = outbox.delivered_by_key("p", TARGET, keys)
    assert set(found) == {keys[0]}  # lead 2 is queued only; lead 3 went elsewhere
    assert found[keys[0]].lead_id == first
    assert found[keys[0]].delivered_at == 2_000.0
    assert outbox.delivered_by_key("other", TARGET, keys) == {}
    assert outbox.count() == before  # nothing queued or changed


def test_a_file_of_schema_3_opens_with_its_counts_and_keeps_every_lead(tmp_path: Path) -> None:
    """A queue file today's release made (schema 3, leads in several states and batches): it
    opens as schema 5, keeps every lead, and its per-batch counts match the leads and follow
    every later change."""

    path = tmp_path / "o.sqlite3"
    db = queue_file_at(path, 3)
    for batch in (1, 2):
        db.execute(
            "INSERT INTO batches (id, profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, source, total, first_lead_id, last_lead_id, created_at) "
            f"VALUES ({batch}, 'p', 3, 42, 101, 0, 'x', 3, {batch * 3 - 2}, {batch * 3}, 0)"
        )
    states = ["delivered", "delivered", "rejected", "queued", "duplicate", "delivered"]
    for number, state in enumerate(states, start=1):
        db.execute(
            "INSERT INTO leads (id, batch_id, profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, fields, external_id, external_id_generated, state, "
            "next_attempt_at, unknown_outcome, created_at, updated_at) VALUES "
            f"({number}, {1 + (number > 3)}, 'p', 3, 42, 101, 0, '{{\"Name\": \"A{number}\"}}', "
            f"'nd-{number}', 1, '{state}', 0, 0, 0, 0)"
        )
    db.close()
    with Outbox(path) as box:
        assert box.schema_version == 5
        assert [lead.fields["Name"] for lead in box.leads()] == [f"A{n}" for n in range(1, 7)]
        assert box.counts("p").as_dict() == {
            **dict.fromkeys((s.value for s in State), 0),
            "delivered": 3,
            "rejected": 1,
            "queued": 1,
            "duplicate": 1,
        }
        assert box.counts(batch_id=1)[State.DELIVERED] == 2
        assert box.count(LeadQuery(profile="p", states=frozenset({State.DELIVERED}))) == 3
        assert box.open_batch_ids("p") == [2]
        box.cancel([4])
        assert box.counts("p")[State.CANCELLED] == 1
        assert box.counts("p").open == 0
        assert box.open_batch_ids("p") == []
        assert list(box.lead_ids(LeadQuery(profile="p"), after=4)) == [5, 6]
        assert list(box.lead_ids(LeadQuery(profile="p"))) == [1, 2, 3, 4, 5, 6]
        delivered = LeadQuery(profile="p", states=frozenset({State.DELIVERED}))
        assert list(box.lead_ids(delivered)) == [1, 2, 6]  # part of each batch: read by index
        assert list(box.lead_ids(LeadQuery(profile="p", search="A5"))) == [5]


def test_leads_taken_back_to_the_grid_are_cancelled_for_good(outbox: Outbox) -> None:
    """Their fields are queued again as new leads with the same external ids: retrying an
    original would send the person twice, so ``requeue`` leaves them (and only them)."""
    batch = outbox.enqueue("p", TARGET, [lead(i) for i in range(4)], allow_duplicates=False,
                           source="x")  # fmt: skip
    ids = [found.id for found in outbox.leads(LeadQuery(batch_id=batch.id))]
    at = 1_000_000.0
    outbox.record(
        Attempt(ids[0], at, at, "rejected", 102, "no phone field", 0.1),
        Transition(State.REJECTED, code=102, message="no phone field"),
    )
    outbox.hold([ids[1], ids[2]])
    outbox.cancel([ids[3]])  # cancelled by a person: Retry may send it again
    taken = outbox.take_back(ids[:2])
    assert sorted(found.id for found in taken) == ids[:2]
    for found in taken:
        assert found.state is State.CANCELLED
        assert found.last_message == TAKEN_BACK
        assert "queued again as a new lead" in found.sentence
    assert outbox.take_back([ids[0]]) == []  # not twice
    assert [found.id for found in outbox.requeue(ids)] == ids[2:]
    assert outbox.get(ids[0]).state is State.CANCELLED  # type: ignore[union-attr]
    assert outbox.get(ids[1]).state is State.CANCELLED  # type: ignore[union-attr]
    assert outbox.requeue_duplicates(ids[:2]) == []
