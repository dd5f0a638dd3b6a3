"""The queue view over a real outbox: which actions apply to the selected leads, the figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QPoint, Qt
from PySide6.QtGui import QKeySequence
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.dispatcher import QueueFigures
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import LeadInput, LeadQuery, Target
from noojee_desk.ui.queue.model import COL_BATCH, COL_ID, COL_STATUS, QueueModel
from noojee_desk.ui.queue.view import PauseAction, QueueView

TARGET = Target(3, 42, 101)
FIGURES = QueueFigures(
    in_flight=2, limit=8, rate_per_s=3.5, queued=1200, next_retry_at=None, paused_reason=None,
    server_state="ok", counts={"queued": 1200},
)  # fmt: skip


def make_view(qtbot: QtBot, tmp_path: Path, count: int = 4) -> tuple[Outbox, QueueView]:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    leads = [LeadInput({"Name": f"P{i}", "FirstPhone": f"03701{i:05d}"}) for i in range(count)]
    outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    model = QueueModel()
    model.reset(outbox.leads())
    view = QueueView(model)
    qtbot.addWidget(view)
    view.show()
    return outbox, view


def select(view: QueueView, *rows: int) -> None:
    view.table.clearSelection()
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    for row in rows:
        view.table.selectionModel().select(view.model.index(row, 0), flags)


def test_hold_applies_to_queued_leads_only(qtbot: QtBot, tmp_path: Path) -> None:
    outbox, view = make_view(qtbot, tmp_path)
    hold = view.act_hold
    assert hold.shortcut() == QKeySequence("Ctrl+H")
    assert "(Ctrl+H)" in hold.toolTip()
    assert hold in view.lead_actions
    assert not hold.isEnabled()  # nothing selected
    select(view, 0, 2)
    assert hold.isEnabled()
    with qtbot.waitSignal(view.hold_requested) as asked:
        hold.trigger()
    first = view.model.lead_at(0).id
    assert asked.args == [[first, view.model.lead_at(2).id]]

    # Held (and cancelled) leads cannot be held again; the selection follows their new state.
    outbox.hold([first])
    outbox.cancel([view.model.lead_at(1).id])
    view.model.update(outbox.leads(LeadQuery(lead_ids=[first, view.model.lead_at(1).id])))
    select(view, 0, 1)
    assert view.model.index(0, COL_STATUS).data() == "On hold"
    assert not hold.isEnabled()
    assert view.act_retry.isEnabled()  # a held lead is sent again by Retry
    select(view, 0, 3)  # one held, one queued: Hold applies to the queued one
    assert hold.isEnabled()


def test_hold_by_keyboard_in_the_table(qtbot: QtBot, tmp_path: Path) -> None:
    _outbox, view = make_view(qtbot, tmp_path)
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow)  # shortcuts reach the active window only
    view.table.setFocus()
    select(view, 1)
    with qtbot.waitSignal(view.hold_requested) as asked:
        qtbot.keyClick(view.table, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    assert asked.args == [[view.model.lead_at(1).id]]


def test_figures_shown_by_the_view_and_the_pause_action(qtbot: QtBot, tmp_path: Path) -> None:
    _outbox, view = make_view(qtbot, tmp_path)
    pause = PauseAction(view)
    view.show_figures(FIGURES)
    pause.show_figures(FIGURES)
    assert view.figures_text == "1,200 waiting · 2 sending · 3.5 leads/s · limit found: 8 at once"
    assert not view.pause.isChecked()
    assert pause.text() == "&Pause sending"

    paused = dataclasses.replace(FIGURES, paused_reason="Paused by you")
    view.show_figures(paused)
    pause.show_figures(paused)
    assert view.pause.isChecked()
    assert view.pause.text() == "Resume sending"
    assert pause.text() == "&Resume sending"
    assert view.model.index(0, COL_STATUS).data() == "Queued"

    attention = dataclasses.replace(
        FIGURES, paused_reason="The PBX rejected the API key.", fix="Enter the key again.",
        needs_attention=True,
    )  # fmt: skip
    view.show_figures(attention)
    assert not view.pause.isChecked()  # the queue is paused for a person, not by the button
    assert view.model.index(0, COL_STATUS).data() == "Needs attention"
    assert view.model.paused_reason == "The PBX rejected the API key. Enter the key again."

    idle = dataclasses.replace(FIGURES, in_flight=0, queued=0)
    view.show_figures(idle)
    assert view.figures_text == "Nothing waiting to be sent."
    assert view.model.index(0, COL_STATUS).data() == "Queued"


def test_search_box_and_newest_first_over_an_attached_model(qtbot: QtBot, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    leads = [
        LeadInput({"Name": f"P{i}", "FirstPhone": f"03701{i:05d}"}, row=i + 1) for i in range(500)
    ]
    outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="sheet.xlsx")
    model = QueueModel(batch_names=lambda batch_id: f"sheet.xlsx #{batch_id}")
    model.attach(lambda query, after: outbox.lead_ids(query, after=after), outbox.leads_by_id)
    model.set_profile("Demo")
    view = QueueView(model)
    qtbot.addWidget(view)
    view.show()
    assert model.rowCount() == 500
    assert model.index(0, COL_BATCH).data() == "sheet.xlsx #1"

    with qtbot.waitSignal(model.loaded, timeout=2000):  # when typing pauses, in SQL
        qtbot.keyClicks(view.search, "0370100499")
    assert model.rowCount() == 1
    assert model.index(0, COL_ID).data() == "500"  # its row in the sheet
    view.search.clear()
    qtbot.waitUntil(lambda: model.rowCount() == 500)

    header = view.table.horizontalHeader()
    qtbot.mouseClick(
        header.viewport(),
        Qt.MouseButton.LeftButton,
        pos=header.rect().topLeft() + QPoint(header.sectionViewportPosition(COL_ID) + 5, 5),
    )
    assert model.descending
    assert model.index(0, COL_ID).data() == "500"  # newest first
    assert view.selected_leads() == []
