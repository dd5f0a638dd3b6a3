"""The queue model and its filter, over a real outbox file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QStyledItemDelegate, QStyleOptionViewItem
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import LeadInput, State, Target, Transition
from noojee_desk.ui.queue.model import (
    COL_DETAILS,
    COL_ID,
    COL_LEAD,
    COL_PHONE,
    COL_STATUS,
    COL_TRIES,
    FILTERS,
    QueueModel,
    status_text,
)

TARGET = Target(3, 42, 101)


def fill(outbox: Outbox, count: int) -> list[int]:
    leads = [
        LeadInput({"Name": f"Person {i}", "FirstPhone": f"03701{i:05d}"}, row=i + 1)
        for i in range(count)
    ]
    batch = outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    return list(range(batch.first_lead_id or 0, (batch.last_lead_id or 0) + 1))


def test_model_passes_the_model_tester_and_follows_updates(
    tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 5)
    model = QueueModel()
    model.reset(outbox.leads())
    qtmodeltester.check(model)
    assert [model.lead_at(row).id for row in range(model.rowCount())] == ids
    assert model.index(0, COL_STATUS).data() == "Queued"
    assert model.index(0, COL_PHONE).data() == "0370100000"

    claimed = outbox.claim_due("Demo", 1)
    model.update(claimed)
    assert model.index(0, COL_STATUS).data() == "Sending…"
    more = fill(outbox, 2)
    model.update(outbox.leads(outbox_query(more)))
    assert model.rowCount() == 7
    qtmodeltester.check(model)

    model.set_paused("The PBX rejected the API key.")
    assert model.index(1, COL_STATUS).data() == "Needs attention"
    assert model.index(1, COL_DETAILS).data() == "The PBX rejected the API key."


def outbox_query(ids: list[int]):
    from noojee_desk.core.delivery.records import LeadQuery

    return LeadQuery(lead_ids=ids)


def test_filter_by_state_and_search(tmp_path: Path, qtbot: QtBot) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    fill(outbox, 4)
    lead = outbox.claim_due("Demo", 1)[0]
    from noojee_desk.core.delivery.records import Attempt

    outbox.record(
        Attempt(lead.id, 1.0, 1.1, "rejected", 104, "DNC", 0.1),
        Transition(State.REJECTED, code=104, message="DNC", sentence="On the Do Not Call list."),
    )
    model = QueueModel()
    model.reset(outbox.leads())
    proxy = model
    assert proxy.rowCount() == 4
    proxy.set_states(FILTERS["Rejected"])
    assert proxy.rowCount() == 1
    assert proxy.index(0, COL_STATUS).data() == "Rejected"
    assert "Do Not Call" in proxy.index(0, COL_DETAILS).data()
    proxy.set_states(None)
    proxy.set_search("person 3")
    assert proxy.rowCount() == 1
    proxy.set_search("")
    assert proxy.rowCount() == 4


def test_status_words() -> None:
    from dataclasses import replace

    from noojee_desk.core.delivery.records import Lead

    base = Lead(
        1, 1, 1, "Demo", TARGET, False, {}, "nd-x", True, State.QUEUED, 0, 0.0, False,
        None, "", "", "", None, None, None, 0.0, 0.0,
    )  # fmt: skip
    assert status_text(base) == "Queued"
    assert status_text(replace(base, state=State.FAILED)) == "Failed (gave up)"
    assert status_text(replace(base, attempts=2, next_attempt_at=4e9)).startswith("Retrying at")
    # a queue file from before hints were bounded may hold a retry time no clock can show
    for never in (float("inf"), 1e300):
        assert status_text(replace(base, attempts=2, next_attempt_at=never)) == "Retrying later"


def test_the_filter_gives_a_view_each_cell_in_one_call(tmp_path: Path, qapp: QApplication) -> None:
    """Views fill a cell with ``multiData``; through the filter it must reach the right lead."""
    left, right = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        fill(outbox, 4)
        model = QueueModel()
        model.reset(outbox.leads())
    proxy = model
    proxy.set_search("person 2")
    assert proxy.rowCount() == 1
    delegate = QStyledItemDelegate()  # reuses one span for every cell, as in a view
    cells = (
        (COL_ID, "3", right),
        (COL_LEAD, "Person 2", left),
        (COL_STATUS, "Queued", left),
        (COL_TRIES, "0", right),
        (COL_PHONE, "0370100002", left),
    )
    for column, text, alignment in cells:
        option = QStyleOptionViewItem()
        delegate.initStyleOption(option, proxy.index(0, column))  # asks multiData
        assert option.text == text
        assert option.displayAlignment & alignment  # nothing carried over from the cell before


def test_a_duplicate_has_its_own_words_tone_and_filter() -> None:
    from dataclasses import replace

    from noojee_desk.core.delivery.records import Lead
    from noojee_desk.ui.queue.model import STATE_TONES

    base = Lead(
        1, 1, 1, "Demo", TARGET, False, {}, "nd-x", True, State.DUPLICATE, 2, 0.0, True,
        105, "DUPLICATE", "", "", None, None, None, 0.0, 0.0,
    )  # fmt: skip
    assert status_text(base) == "Duplicate (maybe its own earlier try)"
    assert status_text(replace(base, state=State.DELIVERED)) == "Delivered"
    assert STATE_TONES[State.DUPLICATE] == "warning"
    assert FILTERS["Duplicate, maybe delivered"] == frozenset({State.DUPLICATE})
    assert State.DUPLICATE not in (FILTERS["Delivered"] or set())
    assert State.DUPLICATE in (FILTERS["Needs a person"] or set())


# -- the model as a window onto the outbox ---------------------------------------------------


def attached(outbox: Outbox, profile: str = "Demo") -> QueueModel:
    model = QueueModel()
    model.attach(lambda query, after: outbox.lead_ids(query, after=after), outbox.leads_by_id)
    model.set_profile(profile)
    return model


def reject(outbox: Outbox, lead_id: int, code: int = 104) -> None:
    from noojee_desk.core.delivery.records import Attempt

    with outbox.transaction() as db:
        db.execute("UPDATE leads SET state = 'sending' WHERE id = ?", (lead_id,))
    outbox.record(
        Attempt(lead_id, 1.0, 1.1, "rejected", code, "DNC", 0.1),
        Transition(State.REJECTED, code=code, message="DNC", sentence="On the Do Not Call list."),
    )


def test_an_attached_model_reads_only_the_pages_it_shows(
    tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 1000)
    outbox.enqueue("Other", TARGET, [LeadInput({"Name": "Elsewhere"})], allow_duplicates=False,
                   source="x")  # fmt: skip
    asked: list[int] = []

    def pages(wanted):
        asked.append(len(wanted))
        return outbox.leads_by_id(wanted)

    model = QueueModel()
    model.attach(lambda query, after: outbox.lead_ids(query, after=after), pages)
    model.set_profile("Demo")
    assert model.rowCount() == 1000  # the other profile's lead is not in it
    assert model.index(999, COL_LEAD).data() == "Person 999"
    assert model.index(0, COL_LEAD).data() == "Person 0"
    assert model.index(1, COL_ID).data() == "2"  # the row in its paste
    assert sum(asked) <= 400
    assert max(asked) <= 100  # a page around the row asked for
    assert model.lead_at(500).id == ids[500]
    qtmodeltester.check(model)


def test_filter_and_search_run_in_sql_and_rows_follow_changes(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 300)
    model = attached(outbox)
    model.set_states(FILTERS["Rejected"])
    assert model.rowCount() == 0
    reject(outbox, ids[250])
    model.update(outbox.leads_by_id([ids[250]]).values())  # enters the filter
    assert model.rowCount() == 1
    assert model.index(0, COL_STATUS).data() == "Rejected"
    reject(outbox, ids[10])
    model.update(outbox.leads_by_id([ids[10]]).values())  # in queue order, before the first
    assert [model.lead_at(r).id for r in range(2)] == [ids[10], ids[250]]
    outbox.requeue([ids[10]])
    model.update(outbox.leads_by_id([ids[10]]).values())  # leaves it
    assert [model.lead_at(r).id for r in range(model.rowCount())] == [ids[250]]

    model.set_states(None)
    model.set_search("0370100123")  # a phone, in SQL over the fields
    assert model.rowCount() == 1
    assert model.index(0, COL_LEAD).data() == "Person 123"
    model.set_search("person 29")  # a name: 29, 290 … 299
    assert model.rowCount() == 11
    seventh = outbox.get(ids[7])
    assert seventh is not None
    model.set_search(seventh.external_id)
    assert model.rowCount() == 1
    model.set_search("do not call")  # the message (the re-queued lead keeps its last one)
    assert [model.lead_at(r).id for r in range(model.rowCount())] == [ids[10], ids[250]]


def test_live_changes_reach_the_rows_shown_while_scrolled_and_newest_first(
    tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 2000)
    model = attached(outbox)
    model.sort(COL_ID, Qt.SortOrder.DescendingOrder)
    assert model.lead_at(0).id == ids[-1]
    assert model.index(1500, COL_STATUS).data() == "Queued"  # scrolled far down
    lead = model.lead_at(1500)
    reject(outbox, lead.id)
    model.update(outbox.leads_by_id([lead.id]).values())
    assert model.index(1500, COL_STATUS).data() == "Rejected"
    assert model.row_of(lead.id) == 1500

    # Another connection (another process) queues more: they come in at the top.
    with Outbox(tmp_path / "outbox.sqlite3") as other:
        more = fill(other, 3)
    model.fetch_new()
    assert model.rowCount() == 2003
    assert [model.lead_at(r).id for r in range(3)] == more[::-1]
    assert model.row_of(lead.id) == 1503
    qtmodeltester.check(model)
    model.sort(COL_ID, Qt.SortOrder.AscendingOrder)
    assert model.lead_at(0).id == ids[0]


def test_counts_come_from_the_per_batch_counts(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 5)
    second = fill(outbox, 2)
    reject(outbox, ids[0])
    outbox.hold([second[0]])
    batches = outbox.batches("Demo")
    counts = outbox.batch_counts(batch.id for batch in batches)
    newest, oldest = batches[0].id, batches[1].id
    assert counts[oldest][State.REJECTED] == 1
    assert counts[oldest][State.QUEUED] == 4
    assert counts[newest][State.HELD] == 1
    assert counts[newest].total == 2
    assert outbox.counts("Demo").open == 6
    assert outbox.open_batch_ids("Demo") == [newest, oldest]


def test_a_bulk_change_rereads_the_rows_without_a_reset(tmp_path: Path, qtbot: QtBot) -> None:
    """A bulk retry or hold (``LeadsReloaded``): unfiltered, the view keeps its place."""
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 300)
    model = attached(outbox)
    assert model.index(250, COL_STATUS).data() == "Queued"
    outbox.hold(ids)
    with qtbot.assertNotEmitted(model.modelReset), qtbot.waitSignal(model.dataChanged):
        model.reload()
    assert model.index(250, COL_STATUS).data() == "On hold"
    model.set_states(FILTERS["Waiting to send"])
    outbox.cancel(ids[:100])
    with qtbot.waitSignal(model.modelReset):  # filtered: rows leave, so the query again
        model.reload()
    assert model.rowCount() == 200
