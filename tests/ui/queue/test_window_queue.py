"""The queue view in the window: a query that fails in its worker, a read of changed leads that
fails, and the search that the view and the export share."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from helpers.waits import until
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import LeadInput, Target
from noojee_desk.ui.banner import BannerReason
from noojee_desk.ui.main_window import MainWindow
from noojee_desk.ui.queue.model import COL_STATUS

TARGET = Target(3, 42, 101)


def states(window: MainWindow) -> list[str]:
    model = window.queue_model
    return [model.index(r, COL_STATUS).data() for r in range(model.rowCount())]


async def paused_with(window: MainWindow, qtbot: QtBot, *names: str) -> list[int]:
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    qtbot.mouseClick(window.queue_view.pause, Qt.MouseButton.LeftButton)
    leads = [LeadInput({"Name": n, "FirstPhone": f"037010000{i}"}) for i, n in enumerate(names)]
    await window.enqueue(TARGET, leads, False, "form")
    await until(lambda: window.queue_model.rowCount() == len(names), what="the leads shown")
    model = window.queue_model
    return [model.id_at(row) for row in range(model.rowCount())]


@pytest.mark.asyncio
async def test_a_query_that_fails_in_its_worker_leaves_the_view_working(
    window: MainWindow,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = await paused_with(window, qtbot, "Ann Lee", "Bob Ray")
    model = window.queue_model

    def broken(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("not a storage error")

    with monkeypatch.context() as patch:
        patch.setattr(Outbox, "lead_ids", broken)
        with caplog.at_level(logging.ERROR):
            await model.refresh()
        assert not model.loading
        assert "query failed" in caplog.text
    more = await window.enqueue(TARGET, [LeadInput({"Name": "Cy", "FirstPhone": "0370109999"})],
                                False, "form")  # fmt: skip
    assert more is not None
    await until(lambda: model.rowCount() == 3, what="a new lead shown after the failure")
    assert [model.id_at(row) for row in range(2)] == ids


@pytest.mark.asyncio
async def test_changed_leads_whose_read_fails_are_read_again(
    window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await paused_with(window, qtbot, "Ann Lee")
    window.desk.outbox.hold(ids)
    with monkeypatch.context() as patch:

        def broken(*_args: object, **_kwargs: object) -> object:
            raise sqlite3.OperationalError("disk I/O error")

        patch.setattr(Outbox, "leads_by_id", broken)
        window._pending_ids.add(ids[0])
        window._flush_changes()
        assert window.problem_banner.reason is BannerReason.QUEUE_FILE
        assert window._pending_ids == {ids[0]}  # kept for the next read
    window._flush_changes()
    assert not window._pending_ids
    assert states(window) == ["On hold"]


@pytest.mark.asyncio
async def test_the_view_and_the_export_find_the_same_leads_for_any_case(
    window: MainWindow, qtbot: QtBot
) -> None:
    ids = await paused_with(window, qtbot, "Mesut Özil", "Jörg Müller", "ANNE MÜLLER")
    model = window.queue_model
    outbox = window.desk.outbox
    for typed, found in (("Özil", ids[:1]), ("MÜLLER", ids[2:]), ("müller", ids[1:2])):
        window.queue_view.search.setText(typed)
        window.queue_view._search_now()  # as Enter does (typing waits for a pause)
        await until(lambda: not model.loading, model.loaded, what=typed)
        shown = [model.id_at(row) for row in range(model.rowCount())]
        assert shown == found, typed
        exported = [lead.id for lead in outbox.iter_leads(window._shown_query())]
        assert exported == shown, typed


@pytest.mark.asyncio
async def test_the_window_sorts_by_status_in_its_worker_and_a_held_lead_moves_up(
    window: MainWindow, qtbot: QtBot
) -> None:
    ids = await paused_with(window, qtbot, "Ann Lee", "Bob Ray", "Cy Cole")
    model = window.queue_model
    header = window.queue_view.table.horizontalHeader()
    x = header.sectionViewportPosition(COL_STATUS) + 5
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    assert header.sortIndicatorSection() == COL_STATUS
    await until(lambda: model.order == "status" and not model.loading, what="sorted by status")
    assert [model.id_at(row) for row in range(3)] == ids  # all queued: queue order
    window.queue_view.table.selectRow(2)
    window.queue_view.act_hold.trigger()  # through the dispatcher and its events
    await until(lambda: model.id_at(0) == ids[2], what="the held lead first")
    assert states(window) == ["On hold", "Queued", "Queued"]
    assert window.queue_view.selected_ids() == [ids[2]]  # the selection went with it
