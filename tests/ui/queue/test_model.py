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
    QueueFilter,
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
    proxy = QueueFilter()
    proxy.setSourceModel(model)
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


def test_the_filter_gives_a_view_each_cell_in_one_call(tmp_path: Path, qapp: QApplication) -> None:
    """Views fill a cell with ``multiData``; through the filter it must reach the right lead."""
    left, right = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        fill(outbox, 4)
        model = QueueModel()
        model.reset(outbox.leads())
    proxy = QueueFilter()
    proxy.setSourceModel(model)
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
