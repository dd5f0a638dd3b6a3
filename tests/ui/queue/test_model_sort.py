"""The queue sorted by status and by last change over a real outbox file: the order from SQL,
flipped, rows moved by live changes, new leads in their places, searches and the selection."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.order import STATUS_RANK, Order
from noojee_desk.core.delivery.outbox import Outbox, SearchStopped
from noojee_desk.core.delivery.records import (
    Attempt,
    Lead,
    LeadInput,
    LeadQuery,
    State,
    Target,
    Transition,
)
from noojee_desk.ui.queue.model import COL_ID, COL_STATUS, COL_TRIES, COL_UPDATED, QueueModel
from noojee_desk.ui.queue.view import QueueView

TARGET = Target(3, 42, 101)
ASC, DESC = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder
#: States and last changes (seconds) for the leads of ``fill``: ties in both, on purpose.
MIX = [
    (State.DELIVERED, 300.0), (State.QUEUED, 100.5), (State.REJECTED, 500.0),
    (State.HELD, 100.2), (State.DELIVERED, 200.0), (State.FAILED, 500.9),
    (State.QUEUED, 50.0), (State.DUPLICATE, 400.0), (State.CANCELLED, 200.7),
    (State.SENDING, 600.0), (State.QUEUED, 300.0), (State.REJECTED, 10.0),
]  # fmt: skip
BASE = 1_764_000_000.0  # late 2025


class Later:
    """A runner whose jobs run when asked (as a worker's answer reaches the UI a moment later)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[], Any], Callable[[Any], None]]] = []

    def __call__(self, job: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self.jobs.append((job, done))

    def finish(self) -> None:
        job, done = self.jobs.pop(0)
        done(job())

    def finish_all(self) -> None:
        while self.jobs:
            self.finish()


def fill(outbox: Outbox, count: int, name: str = "Person") -> list[int]:
    leads = [
        LeadInput({"Name": f"{name} {i}", "FirstPhone": f"03701{i:05d}"}) for i in range(count)
    ]
    batch = outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    return list(range(batch.first_lead_id or 0, (batch.last_lead_id or 0) + 1))


def mixed(outbox: Outbox, name: str = "Person") -> list[int]:
    """Leads in every state, changed at the times of ``MIX``."""
    ids = fill(outbox, len(MIX), name)
    with outbox.transaction() as db:
        for lead_id, (state, when) in zip(ids, MIX, strict=True):
            db.execute(
                "UPDATE leads SET state = ?, updated_at = ? WHERE id = ?",
                (state.value, BASE + when, lead_id),
            )
    return ids


def expected(outbox: Outbox, order: Order, query: LeadQuery | None = None) -> list[int]:
    """The ids in ``order``, sorted in Python from the leads (then by id)."""
    leads = outbox.leads(query or LeadQuery(profile="Demo"))
    if order == "status":
        leads.sort(key=lambda lead: (STATUS_RANK[lead.state], lead.id))
    elif order == "updated":
        leads.sort(key=lambda lead: (int(lead.updated_at), lead.id))
    return [lead.id for lead in leads]


def ids_of(model: QueueModel) -> list[int]:
    return [model.id_at(row) for row in range(model.rowCount())]


def attached(outbox: Outbox, runner: Any = None) -> QueueModel:
    """A model as the window attaches it: ids, first results and scan, sort keys."""

    def scan(query: LeadQuery, stale: Callable[[], bool]) -> array[int] | None:
        try:
            return outbox.lead_ids(query, stop=stale)
        except SearchStopped:
            return None

    model = QueueModel()
    kwargs = {} if runner is None else {"runner": runner}
    model.attach(
        lambda query, after: outbox.lead_ids(query, after=after),
        outbox.leads_by_id,
        top=outbox.last_lead_id,
        first=lambda query: outbox.first_ids(query, scan_for=0),
        scan=scan,
        keyed=lambda query, order, after: outbox.sort_keys(query, order, after=after),
        **kwargs,
    )
    return model


def reject(outbox: Outbox, lead_id: int) -> Lead:
    with outbox.transaction() as db:
        db.execute("UPDATE leads SET state = 'sending' WHERE id = ?", (lead_id,))
    return outbox.record(
        Attempt(lead_id, 1.0, 1.1, "rejected", 104, "DNC", 0.1),
        Transition(State.REJECTED, code=104, message="DNC", sentence="On the Do Not Call list."),
    )


def test_sorted_by_status_and_by_last_change_from_sql_and_turned_round(
    tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = mixed(outbox)
    later = Later()
    model = attached(outbox, later)
    qtmodeltester.check(model)
    model.set_profile("Demo")
    later.finish()
    assert ids_of(model) == ids
    assert model.can_sort(COL_STATUS)
    assert model.can_sort(COL_UPDATED)
    assert not model.can_sort(COL_TRIES)

    model.sort(COL_STATUS, ASC)
    assert model.sort_column == COL_STATUS  # the header shows it at once
    assert model.loading
    assert ids_of(model) == ids  # the rows shown stay while the sorted query runs
    later.finish()
    by_status = expected(outbox, "status")
    assert ids_of(model) == by_status
    states = [model.lead_at(row).state for row in range(model.rowCount())]
    assert states[:5] == [State.FAILED, State.REJECTED, State.REJECTED, State.DUPLICATE,
                          State.HELD]  # fmt: skip
    assert states[-3:] == [State.DELIVERED, State.DELIVERED, State.CANCELLED]
    assert by_status != ids

    model.sort(COL_STATUS, DESC)  # the other way round: no query
    assert not later.jobs
    assert ids_of(model) == by_status[::-1]
    model.sort(COL_UPDATED, ASC)
    later.finish()
    by_change = expected(outbox, "updated")
    assert ids_of(model) == by_change
    # Whole seconds, then queue order: 100.5 (second lead) after 100.2 (fourth) is a tie.
    assert by_change[:4] == [ids[11], ids[6], ids[1], ids[3]]
    assert by_change[-3:] == [ids[2], ids[5], ids[9]]
    model.sort(COL_UPDATED, DESC)
    assert ids_of(model) == by_change[::-1]
    model.sort(COL_ID, ASC)
    later.finish()
    assert ids_of(model) == ids
    assert model.order == "id"
    qtmodeltester.check(model)


@pytest.mark.parametrize("descending", [False, True])
def test_a_live_change_moves_its_row_and_new_leads_land_in_their_places(
    tmp_path: Path, qtmodeltester: ModelTester, qtbot: QtBot, descending: bool
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = mixed(outbox)
    model = attached(outbox)
    model.set_profile("Demo")
    model.sort(COL_STATUS, DESC if descending else ASC)
    qtmodeltester.check(model)
    view = QTableView()
    view.setModel(model)

    def shown() -> list[int]:
        order = expected(outbox, "status")
        return order[::-1] if descending else order

    assert ids_of(model) == shown()
    queued = ids[10]  # the last queued lead: it moves up to the rejected ones
    view.selectRow(model.row_of(queued) or 0)
    moves: list[bool] = []
    model.rowsMoved.connect(lambda *_: moves.append(True))
    model.update([reject(outbox, queued)])
    assert ids_of(model) == shown()
    assert moves == [True]
    (selected,) = view.selectionModel().selectedRows()
    assert model.id_at(selected.row()) == queued  # the selection went with it
    assert model.index(selected.row(), COL_STATUS).data() == "Rejected"

    # A change that keeps the key (still rejected, another message): the row stays.
    again = dataclasses.replace(model.lead_at(selected.row()), last_message="DNC again")
    model.update([again])
    assert moves == [True]
    assert ids_of(model) == shown()

    # New leads: one shown by an event, more queued by another process and fetched.
    (held,) = outbox.hold(fill(outbox, 1))
    model.update([held])
    assert ids_of(model) == shown()
    with Outbox(tmp_path / "outbox.sqlite3") as other:
        fill(other, 3, "Other")
    model.fetch_new()
    assert ids_of(model) == shown()
    assert model.rowCount() == len(MIX) + 4

    # Leaving the filter, then entering it again where its state puts it.
    model.set_states(frozenset({State.QUEUED, State.REJECTED}))
    assert ids_of(model) == [
        i for i in shown() if outbox.get(i).state in (State.QUEUED, State.REJECTED)
    ]
    (cancelled,) = outbox.cancel([ids[1]])
    model.update([cancelled])
    assert ids[1] not in ids_of(model)
    model.update([reject(outbox, ids[1])])
    assert model.row_of(ids[1]) == (model.rowCount() - 1 if descending else 0)
    wanted = (State.QUEUED, State.REJECTED)
    order = [i for i in expected(outbox, "status") if outbox.get(i).state in wanted]
    assert ids_of(model) == (order[::-1] if descending else order)
    qtmodeltester.check(model)


def test_sorted_by_last_change_a_change_goes_to_the_latest_end(
    tmp_path: Path, qtbot: QtBot
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = mixed(outbox)
    model = attached(outbox)
    model.set_profile("Demo")
    model.sort(COL_UPDATED, DESC)  # the latest changes first
    assert ids_of(model)[0] == ids[9]
    (held,) = outbox.hold([ids[6]])  # the oldest queued lead, changed now
    model.update([held])
    assert ids_of(model)[0] == ids[6]
    assert ids_of(model) == expected(outbox, "updated")[::-1]


def test_many_new_leads_while_sorted_come_from_the_sorted_query_in_one_layout_change(
    tmp_path: Path, qtbot: QtBot, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = mixed(outbox)
    later = Later()
    model = attached(outbox, later)
    qtmodeltester.check(model)
    model.set_profile("Demo")
    later.finish()
    model.sort(COL_STATUS, ASC)
    later.finish()
    view = QTableView()
    view.setModel(model)
    view.selectRow(model.row_of(ids[9]) or 0)  # the sending lead
    more = fill(outbox, 150)  # queued: after the sending lead, before the delivered ones
    layouts: list[bool] = []
    model.layoutChanged.connect(lambda *_: layouts.append(True))
    with qtbot.assertNotEmitted(model.modelReset):
        model.fetch_new()
        later.finish_all()
    assert layouts == [True]
    assert ids_of(model) == expected(outbox, "status")
    assert set(more) <= set(ids_of(model))
    (selected,) = view.selectionModel().selectedRows()
    assert model.id_at(selected.row()) == ids[9]


def test_a_search_while_sorted_is_complete_and_sorted(
    tmp_path: Path, qtbot: QtBot, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    sellers = mixed(outbox, "Seller")  # a word starting with "sell": the indexes find them
    upsell = mixed(outbox, "Upsell")  # only a part of a word: a scan finds them
    mixed(outbox, "Buyer")
    later = Later()
    model = attached(outbox, later)
    qtmodeltester.check(model)
    model.set_profile("Demo")
    later.finish()
    model.sort(COL_STATUS, ASC)
    later.finish()
    searching: list[bool] = []
    model.searching.connect(searching.append)
    model.set_search("sell")
    assert len(later.jobs) == 1
    later.finish()  # one sorted query over every lead: no second phase
    assert not later.jobs
    assert not model.scanning
    assert searching == []
    query = LeadQuery(profile="Demo", search="sell")
    found = expected(outbox, "status", query)
    assert sorted(found) == sellers + upsell
    assert ids_of(model) == found
    model.sort(COL_UPDATED, DESC)  # sorted again: the search stays
    later.finish()
    assert ids_of(model) == expected(outbox, "updated", query)[::-1]
    # A live change keeps its row by the search's rule, at its new place.
    (held,) = outbox.hold([upsell[1]])
    model.update([held])
    assert ids_of(model)[0] == upsell[1]
    renamed = dataclasses.replace(held, fields={"Name": "Buyer"})
    model.update([renamed])  # as if renamed: it leaves the search
    assert upsell[1] not in ids_of(model)
    # Back in queue order, the search has its two phases again (the file still has the name).
    model.sort(COL_ID, ASC)
    later.finish()
    assert model.scanning
    later.finish()
    assert ids_of(model) == sellers + upsell


def test_the_selection_stays_on_its_leads_across_a_sort(tmp_path: Path, qtbot: QtBot) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = mixed(outbox)
    model = attached(outbox)
    model.set_profile("Demo")
    view = QueueView(model)
    qtbot.addWidget(view)
    view.show()
    chosen = [ids[2], ids[6]]
    from PySide6.QtCore import QItemSelectionModel

    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for lead_id in chosen:
        view.table.selectionModel().select(model.index(model.row_of(lead_id) or 0, 0), flags)
    for column, order in ((COL_STATUS, ASC), (COL_STATUS, DESC), (COL_UPDATED, DESC),
                          (COL_ID, DESC), (COL_ID, ASC)):  # fmt: skip
        model.sort(column, order)
        assert sorted(view.selected_ids()) == chosen, (column, order)


def test_the_header_sorts_by_status_and_last_change_and_shows_it(
    tmp_path: Path, qtbot: QtBot
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = mixed(outbox)
    model = attached(outbox)
    model.set_profile("Demo")
    view = QueueView(model)
    qtbot.addWidget(view)
    view.show()
    header = view.table.horizontalHeader()

    def click(column: int) -> None:
        x = header.sectionViewportPosition(column) + 5
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))

    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (COL_ID, ASC)
    click(COL_STATUS)
    assert ids_of(model) == expected(outbox, "status")
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (COL_STATUS, ASC)
    click(COL_STATUS)
    assert ids_of(model) == expected(outbox, "status")[::-1]
    assert header.sortIndicatorOrder() == DESC
    click(COL_TRIES)  # not a column to sort by: the indicator stays where the order is
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (COL_STATUS, DESC)
    assert ids_of(model) == expected(outbox, "status")[::-1]
    click(COL_UPDATED)  # first the latest changes
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (COL_UPDATED, DESC)
    assert ids_of(model) == expected(outbox, "updated")[::-1]
    click(COL_UPDATED)
    assert ids_of(model) == expected(outbox, "updated")
    click(COL_ID)
    assert ids_of(model) == ids
    assert "needs a person" in model.headerData(COL_STATUS, Qt.Orientation.Horizontal,
                                                Qt.ItemDataRole.ToolTipRole)  # fmt: skip


def test_a_sorted_query_that_fails_leaves_the_rows_and_the_indicator_as_they_were(
    tmp_path: Path, qtbot: QtBot
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = mixed(outbox)
    later = Later()
    model = attached(outbox, later)
    model.set_profile("Demo")
    later.finish()
    view = QueueView(model)
    qtbot.addWidget(view)
    model.sort(COL_STATUS, ASC)
    view._show_order()
    later.jobs.clear()
    with qtbot.waitSignal(model.order_changed):
        model.query_failed(model.generation)
    header = view.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (COL_ID, ASC)
    assert ids_of(model) == ids
    assert model.order == "id"
    assert not model.loading
    model.sort(COL_STATUS, ASC)  # asked again: it runs again
    later.finish()
    assert ids_of(model) == expected(outbox, "status")


def test_a_model_without_an_outbox_sorts_in_memory(tmp_path: Path, qtbot: QtBot) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    mixed(outbox)
    model = QueueModel()
    model.reset(outbox.leads())
    model.sort(COL_STATUS, ASC)
    assert ids_of(model) == expected(outbox, "status")
    (held,) = outbox.hold([ids_of(model)[-4]])  # a queued one
    model.update([held])
    assert ids_of(model) == expected(outbox, "status")


def test_a_sort_asked_while_a_filter_query_runs_comes_as_a_new_model(
    tmp_path: Path, qtbot: QtBot, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    mixed(outbox)
    later = Later()
    model = attached(outbox, later)
    qtmodeltester.check(model)
    model.set_profile("Demo")
    later.finish()
    model.set_states(frozenset({State.REJECTED, State.QUEUED}))  # other leads: a reset
    model.sort(COL_STATUS, ASC)
    with qtbot.waitSignal(model.modelReset), qtbot.assertNotEmitted(model.layoutChanged):
        later.finish_all()
    query = LeadQuery(profile="Demo", states=frozenset({State.REJECTED, State.QUEUED}))
    assert ids_of(model) == expected(outbox, "status", query)


@pytest.mark.parametrize("descending", [False, True])
def test_with_a_large_selection_a_live_change_is_taken_out_and_put_in_not_moved(
    tmp_path: Path, qtmodeltester: ModelTester, qtbot: QtBot, descending: bool
) -> None:
    # Qt's selection model makes a persistent index of every selected cell at each move: with
    # thousands selected every live change would stall the window. Past MOVE_SELECTION_MAX the
    # row is taken out and put in at its place; the rest of the selection stays as it was.
    from noojee_desk.ui.queue.model import MOVE_SELECTION_MAX

    outbox = Outbox(tmp_path / "outbox.sqlite3")
    mixed(outbox)
    fill(outbox, MOVE_SELECTION_MAX + 20, "Many")
    model = attached(outbox)
    model.set_profile("Demo")
    model.sort(COL_STATUS, DESC if descending else ASC)
    qtmodeltester.check(model)
    view = QueueView(model)
    qtbot.addWidget(view)
    table = view.table
    order = expected(outbox, "status")
    assert ids_of(model) == (order[::-1] if descending else order)
    table.selectAll()
    assert view.selected_count() == model.rowCount() > MOVE_SELECTION_MAX
    moves: list[bool] = []
    model.rowsMoved.connect(lambda *_: moves.append(True))
    queued = next(i for i in order if outbox.get(i).state is State.QUEUED)
    model.update([reject(outbox, queued)])
    order = expected(outbox, "status")
    assert ids_of(model) == (order[::-1] if descending else order)
    assert moves == []
    assert model.index(model.row_of(queued) or 0, COL_STATUS).data() == "Rejected"
    assert view.selected_count() == model.rowCount() - 1  # all but the lead put in again
    # A small selection: the row moves and its selection goes with it.
    table.clearSelection()
    other = next(i for i in order if outbox.get(i).state is State.QUEUED)
    table.selectRow(model.row_of(other) or 0)
    model.update([reject(outbox, other)])
    assert moves == [True]
    (selected,) = table.selectionModel().selectedRows()
    assert model.id_at(selected.row()) == other
    qtmodeltester.check(model)


def test_a_bulk_change_while_sorted_shows_the_leads_as_they_are_now(
    tmp_path: Path, qtbot: QtBot
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    mixed(outbox)
    model = attached(outbox)
    model.set_profile("Demo")
    model.sort(COL_STATUS, ASC)
    painted = [model.index(row, COL_STATUS).data() for row in range(model.rowCount())]
    assert "Delivered" in painted
    with outbox.transaction() as db:
        db.execute("UPDATE leads SET state = 'cancelled'")
    model.reload()
    assert ids_of(model) == expected(outbox, "status")
    shown = {model.index(row, COL_STATUS).data() for row in range(model.rowCount())}
    assert shown == {model.index(0, COL_STATUS).data()}
    assert all(model.lead_at(row).state is State.CANCELLED for row in range(model.rowCount()))
