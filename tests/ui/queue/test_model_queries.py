"""The attached queue model while its queries run: a query that fails, new leads asked for while
a query or a fetch runs, updates that move rows, the highest id a query saw, and the search's
one rule for upper and lower case (the outbox's SQL and the rows that follow live changes)."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.outbox import Outbox, SearchStopped
from noojee_desk.core.delivery.records import LeadInput, LeadQuery, State, Target
from noojee_desk.ui.queue.model import QueueModel, matches, run_here

TARGET = Target(3, 42, 101)


def fill(outbox: Outbox, count: int, name: str = "Person") -> list[int]:
    leads = [
        LeadInput({"Name": f"{name} {i}", "FirstPhone": f"03701{i:05d}"}) for i in range(count)
    ]
    batch = outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    return list(range(batch.first_lead_id or 0, (batch.last_lead_id or 0) + 1))


class Later:
    """A runner whose jobs run when asked (as a worker's answer reaches the UI a moment later)."""

    def __init__(self, read_at_once: bool = False) -> None:
        self.jobs: list[tuple[Callable[[], Any], Callable[[Any], None]]] = []
        self.read_at_once = read_at_once  # the worker reads now, its answer arrives later

    def __call__(self, job: Callable[[], Any], done: Callable[[Any], None]) -> None:
        if self.read_at_once:
            result = job()
            job = lambda: result  # noqa: E731
        self.jobs.append((job, done))

    def finish(self) -> None:
        job, done = self.jobs.pop(0)
        done(job())


def ids_of(model: QueueModel) -> list[int]:
    return [model.id_at(row) for row in range(model.rowCount())]


def attached(outbox: Outbox, runner: Any = None, top: bool = True) -> tuple[QueueModel, list]:
    asked: list[tuple[str, int]] = []

    def finder(query: LeadQuery, after: int) -> array[int]:
        asked.append((query.search, after))
        return outbox.lead_ids(query, after=after)

    model = QueueModel()
    if runner is None:
        model.attach(finder, outbox.leads_by_id, top=outbox.last_lead_id if top else None)
    else:
        model.attach(finder, outbox.leads_by_id, runner, outbox.last_lead_id if top else None)
    return model, asked


def test_rows_changed_are_told_where_they_are_after_the_rows_removed_with_them(
    tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 6)
    model, _ = attached(outbox)
    model.set_profile("Demo")
    model.set_states(frozenset({State.QUEUED}))
    qtmodeltester.check(model)
    for row in range(model.rowCount()):
        model.lead_at(row)
    told: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda first, last: told.append((first.row(), last.row())))
    leads = {lead.id: lead for lead in outbox.leads(LeadQuery(profile="Demo"))}
    tried = dataclasses.replace(leads[ids[4]], attempts=1)  # still queued
    cancelled = dataclasses.replace(leads[ids[1]], state=State.CANCELLED)  # leaves the filter
    model.update([tried, cancelled])
    assert model.row_of(ids[4]) == 3
    assert told == [(3, 3)]
    assert model.lead_at(3).attempts == 1


def test_a_failed_query_leaves_the_model_ready_with_the_changes_that_waited(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 3)
    later = Later()
    model, _ = attached(outbox, later)
    model.set_profile("Demo")
    later.finish()
    model.set_states(frozenset({State.QUEUED}))  # its query fails in the worker
    assert model.loading
    failed = model.generation
    later.jobs.clear()
    cancelled = dataclasses.replace(outbox.leads(LeadQuery(lead_ids=[ids[0]]))[0],
                                    state=State.CANCELLED)  # fmt: skip
    model.update([cancelled])  # waits for the query
    assert model.rowCount() == 3
    model.query_failed(failed)
    assert not model.loading
    assert ids_of(model) == ids[1:]  # the change that waited is shown
    more = fill(outbox, 1)
    model.fetch_new()
    assert len(later.jobs) == 1
    later.finish()
    assert ids_of(model) == ids[1:] + more


def test_new_leads_asked_for_while_a_search_runs_are_shown_when_it_ends(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 3)
    later = Later(read_at_once=True)
    model, _ = attached(outbox, later)
    model.set_profile("Demo")
    later.finish()
    model.set_search("Person")  # typed: the query is in flight
    version = outbox.data_version()
    more = fill(outbox, 2)  # queued on the window's own connection
    assert outbox.data_version() == version  # so no later watch tick asks again
    assert model.fetch_new() is None
    later.finish()  # the search's answer (read before the new leads)
    while later.jobs:
        later.finish()
    assert ids_of(model) == ids + more


def test_one_fetch_at_a_time_and_an_ask_during_it_runs_after(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 2)
    later = Later()
    model, asked = attached(outbox, later)
    model.set_profile("Demo")
    later.finish()
    first = fill(outbox, 1)
    model.fetch_new()
    second = fill(outbox, 1)
    model.fetch_new()
    model.fetch_new()
    assert len(later.jobs) == 1
    later.finish()
    assert len(later.jobs) == 1  # the asks made meanwhile: one fetch
    later.finish()
    assert not later.jobs
    assert ids_of(model) == ids + first + second
    # The first fetch ran once both were queued (its worker read the top then): the second
    # looks above them and reads nothing again.
    assert [after for _, after in asked] == [0, ids[-1], second[-1]]


def test_a_search_that_finds_nothing_does_not_make_each_fetch_read_the_queue(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 50)
    for top in (True, False):
        model, asked = attached(outbox, top=top)
        model.set_profile("Demo")
        model.set_search("nobody")
        assert model.rowCount() == 0
        asked.clear()
        model.fetch_new()
        model.fetch_new()
        assert asked == [("nobody", ids[-1])] * 2  # only what is new since the query
    # With the outbox's top read at query time, a search that found nothing starts above it.
    other = Outbox(tmp_path / "outbox.sqlite3")
    model, asked = attached(outbox)
    model.set_profile("Demo")
    model.set_search("nobody")
    other.enqueue("Demo", TARGET, [LeadInput({"Name": "Elsewhere"})], allow_duplicates=False,
                  source="x")  # fmt: skip
    model.set_search("still nobody")
    asked.clear()
    model.fetch_new()
    assert asked == [("still nobody", other.last_lead_id("Demo"))]


def test_a_fetch_shows_a_lower_id_after_a_higher_one_arrived_by_update(
    tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    for descending in (False, True):
        outbox = Outbox(tmp_path / f"outbox-{descending}.sqlite3")
        ids = fill(outbox, 3)
        later = Later()
        model, _ = attached(outbox, later)
        model.set_profile("Demo")
        later.finish()
        if descending:
            from PySide6.QtCore import Qt

            model.sort(0, Qt.SortOrder.DescendingOrder)
        qtmodeltester.check(model)
        low, high = fill(outbox, 1), fill(outbox, 1)
        model.fetch_new()  # its worker reads both
        model.update(outbox.leads(LeadQuery(lead_ids=high)))  # an event shows the higher one
        later.finish()
        shown = ids + low + high
        assert ids_of(model) == (shown[::-1] if descending else shown)


def test_search_folds_ascii_letters_only_in_sql_and_in_live_changes(
    tmp_path: Path, qtbot: QtBot
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    names = ["Mesut Özil", "Jörg Müller", "Hauptstraße Ost", "ANNE MÜLLER"]
    leads = [LeadInput({"Name": n, "FirstPhone": f"0370100000{i}"}) for i, n in enumerate(names)]
    batch = outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    ids = list(range(batch.first_lead_id or 0, (batch.last_lead_id or 0) + 1))
    model, _ = attached(outbox)
    model.set_profile("Demo")
    expected = {
        "Özil": [ids[0]],
        "özil": [],
        "MÜLLER": [ids[3]],
        "müller": [ids[1]],
        "mÜller": [ids[3]],  # the M either way, the Ü as typed
        "Straße": [ids[2]],
        "STRASSE": [],
        "jörg": [ids[1]],
        "JÖRG": [],
    }
    every = outbox.leads(LeadQuery(profile="Demo"))
    for typed, found in expected.items():
        model.set_search(typed)
        assert ids_of(model) == found, typed
        assert model.search == typed
        assert [lead.id for lead in every if matches(typed, lead)] == found, typed
        assert outbox.count(LeadQuery(profile="Demo", search=typed)) == len(found), typed
    # A live change keeps or drops a row by the same rule.
    model.set_search("MÜLLER")
    renamed = dataclasses.replace(every[1], fields={**every[1].fields, "Name": "JÖRG MÜLLER"})
    model.update([renamed])
    assert ids_of(model) == [ids[1], ids[3]]
    model.update([dataclasses.replace(renamed, fields={**renamed.fields, "Name": "Müller"})])
    assert ids_of(model) == [ids[3]]


def test_the_batch_ids_are_read_in_one_snapshot(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 3)
    other = Outbox(tmp_path / "outbox.sqlite3")
    other.cancel([ids[0]])  # the batch is partly queued: its ids are read lead by lead
    real = outbox._db

    class Between:
        """The connection, with another process's commit after the first read."""

        def __init__(self) -> None:
            self.reads = 0

        def execute(self, sql: str, *args: Any) -> Any:
            cursor = real.execute(sql, *args)
            if sql.lstrip().upper().startswith("SELECT"):
                self.reads += 1
                if self.reads == 1:
                    other.cancel([ids[1]])
            return cursor

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    outbox._db = Between()  # type: ignore[assignment]
    try:
        found = outbox.lead_ids(LeadQuery(profile="Demo", states=frozenset({State.QUEUED})))
    finally:
        outbox._db = real
    assert list(found) == ids[1:]  # as the queue was when the reading began
    assert list(outbox.lead_ids(LeadQuery(profile="Demo", states=frozenset({State.QUEUED})))) == [
        ids[2]
    ]


def two_phase(outbox: Outbox, runner: Any) -> tuple[QueueModel, list[bool]]:
    """A model whose searches show the indexes' first results, then the scan's."""
    stops: list[bool] = []

    def scan(query: LeadQuery, stale: Callable[[], bool]) -> array[int] | None:
        stops.append(stale())
        try:
            return outbox.lead_ids(query, stop=stale)
        except SearchStopped:
            return None

    model = QueueModel()
    model.attach(
        lambda query, after: outbox.lead_ids(query, after=after),
        outbox.leads_by_id,
        runner,
        outbox.last_lead_id,
        first=lambda query: outbox.first_ids(query, scan_for=0),
        scan=scan,
    )
    return model, stops


def test_a_search_shows_the_index_results_then_adds_what_the_scan_finds_in_place(
    tmp_path: Path, qtbot: QtBot, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    words = fill(outbox, 3, "Seller")  # "Seller 0", ...: a word starting with "sell"
    inner = fill(outbox, 2, "Upsell")  # only a part of the word: the scan finds them
    later = Later()
    model, _ = two_phase(outbox, later)
    qtmodeltester.check(model)
    model.set_profile("Demo")
    later.finish()
    view = QTableView()
    view.setModel(model)
    model.set_search("sell")
    searching: list[bool] = []
    model.searching.connect(searching.append)
    later.finish()  # the indexes' answer
    assert ids_of(model) == words
    assert model.scanning
    assert searching == [True]
    view.selectRow(1)
    later.finish()  # the scan's answer
    assert ids_of(model) == words + inner
    assert not model.scanning
    assert searching == [True, False]
    assert [index.row() for index in view.selectionModel().selectedRows()] == [1]
    assert model.id_at(view.selectionModel().selectedRows()[0].row()) == words[1]


def test_a_newer_search_stops_the_scan_of_the_one_before(tmp_path: Path, qtbot: QtBot) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    fill(outbox, 3, "Seller")
    buyers = fill(outbox, 2, "Buyer")
    later = Later()
    model, stops = two_phase(outbox, later)
    model.set_profile("Demo")
    later.finish()
    model.set_search("sell")
    later.finish()  # first results; the scan waits in the worker
    model.set_search("buy")  # typed again before it ran
    later.finish()  # the old scan: stale at once, it ends without an answer
    assert stops == [True]
    later.finish()  # the new search's first results
    assert ids_of(model) == buyers
    later.finish()
    assert stops == [True, False]
    assert ids_of(model) == buyers
    assert not model.scanning


def test_a_live_change_while_the_scan_runs_is_not_undone_by_its_older_answer(
    tmp_path: Path, qtbot: QtBot
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = fill(outbox, 4, "Upsell")  # the scan alone finds them
    later = Later(read_at_once=True)  # the scan reads now; its answer comes after the change
    model, _ = two_phase(outbox, later)
    model.set_profile("Demo")
    later.finish()
    model.set_states(frozenset({State.QUEUED}))
    later.finish()
    model.set_search("sell")
    later.finish()  # nothing from the indexes; the scan has read all four
    assert ids_of(model) == []
    (cancelled,) = outbox.cancel([ids[0]])
    model.update([cancelled])  # no longer queued
    later.finish()
    assert ids_of(model) == ids[1:]


def test_many_places_to_add_the_scan_rows_at_are_one_layout_change(
    tmp_path: Path, qtbot: QtBot, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    every: list[int] = []
    for _ in range(60):  # a word, then a part of a word, 60 times over
        every += fill(outbox, 1, "Seller") + fill(outbox, 2, "Upsell")
    model, _ = two_phase(outbox, run_here)
    qtmodeltester.check(model)
    model.set_profile("Demo")
    view = QTableView()
    view.setModel(model)
    layouts: list[bool] = []
    model.layoutChanged.connect(lambda *_: layouts.append(True))
    model.set_search("sell")
    assert ids_of(model) == every
    assert layouts == [True]
    model.sort(0, Qt.SortOrder.DescendingOrder)
    model.set_search("seller")
    model.set_search("sell")
    assert ids_of(model) == every[::-1]


def test_the_phone_rule_is_the_same_in_sql_and_in_live_changes(
    tmp_path: Path, qtbot: QtBot
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    phones = ["0412 345 678", "(03) 9876 5432", "+61 2 9999 0000", "see 0412345678", "5678"]
    leads = [LeadInput({"Name": f"P{i}", "Phone": p}) for i, p in enumerate(phones)]
    outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    every = outbox.leads(LeadQuery(profile="Demo"))
    model, _ = two_phase(outbox, run_here)
    model.set_profile("Demo")
    typed = ["345678", "+61 412 345 678", "0412345678", "(02) 9999-0000", "5678", "9876 543"]
    for needle in typed:
        model.set_search(needle)
        found = list(outbox.lead_ids(LeadQuery(profile="Demo", search=needle)))
        assert ids_of(model) == found, needle
        assert [lead.id for lead in every if matches(needle, lead)] == found, needle
    model.set_search("0412345678")  # the phone rule and the text rule
    assert ids_of(model) == [every[0].id, every[3].id]
    moved = dataclasses.replace(every[0], fields={"Name": "P0", "Phone": "0499 000 000"})
    model.update([moved])  # a live change by the same rule
    assert ids_of(model) == [every[3].id]


@pytest.mark.parametrize("descending", [False, True])
def test_the_scan_rows_go_in_between_the_first_ones_and_a_row_shown_since_stays(
    tmp_path: Path, qtbot: QtBot, qtmodeltester: ModelTester, descending: bool
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    every: list[int] = []
    for _ in range(3):
        every += fill(outbox, 1, "Seller") + fill(outbox, 2, "Upsell")
    later = Later(read_at_once=True)
    model, _ = two_phase(outbox, later)
    qtmodeltester.check(model)
    model.set_profile("Demo")
    later.finish()
    if descending:
        model.sort(0, Qt.SortOrder.DescendingOrder)
    view = QTableView()
    view.setModel(model)
    model.set_search("sell")
    later.finish()  # the words: every third lead; the scan has read them all
    assert ids_of(model) == (every[::3][::-1] if descending else every[::3])
    view.selectRow(1)
    chosen = model.id_at(1)
    newer = fill(outbox, 1, "Seller")  # queued after the scan read, shown by a live change
    model.update(outbox.leads(LeadQuery(lead_ids=newer)))
    later.finish()
    shown = every + newer
    assert ids_of(model) == (shown[::-1] if descending else shown)
    (row,) = view.selectionModel().selectedRows()
    assert model.id_at(row.row()) == chosen
