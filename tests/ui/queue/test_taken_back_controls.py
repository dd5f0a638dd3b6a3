"""The queue's controls on leads taken back to the grid: Retry is off (they are never sent
again), and a control that changes nothing says why instead of "0 leads changed"."""

from __future__ import annotations

import pytest
from helpers.waits import until
from PySide6.QtCore import QItemSelectionModel
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.dispatcher import Dispatcher
from noojee_desk.core.delivery.records import LeadInput, LeadQuery, State, Target
from noojee_desk.ui.main_window import MainWindow

TARGET = Target(3, 42, 101)


async def refused_leads(window: MainWindow, count: int) -> list[int]:
    """``count`` leads the demo PBX refuses (a number on its Do Not Call list)."""
    await window.start(demo=True)
    await until(lambda: window.form.target_ready, what="ready")
    desk = window.desk
    validator = desk.validator(desk.layout_for(3))
    rows = [{"Name": f"Refused {i}", "FirstPhone": "02 9999 9999"} for i in range(count)]
    checks = [validator.validate_one(row) for row in rows]
    leads = [LeadInput(c.fields, c.phones, i + 1) for i, c in enumerate(checks)]
    await window.enqueue(TARGET, leads, False, "Refused.csv")
    rejected = frozenset({State.REJECTED})
    await until(lambda: len(desk.outbox.leads(LeadQuery(states=rejected))) == count, what="refused")
    return [lead.id for lead in desk.outbox.leads(LeadQuery(states=rejected))]


def select(window: MainWindow, lead_ids: list[int]) -> None:
    view = window.queue_view
    selection = view.table.selectionModel()
    selection.clearSelection()
    for lead_id in lead_ids:
        row = window.queue_model.row_of(lead_id)
        assert row is not None
        selection.select(
            window.queue_model.index(row, 0),
            QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
        )


@pytest.mark.asyncio
async def test_retry_is_off_for_leads_taken_back_to_the_grid(
    window: MainWindow, qtbot: QtBot
) -> None:
    ids = await refused_leads(window, 2)
    dispatcher = window.desk.dispatcher
    assert dispatcher is not None
    taken: list[object] = []
    dispatcher.take_back(ids[:1], taken.extend)
    await until(lambda: taken, what="taken back")
    await until(
        lambda: (
            (row := window.queue_model.row_of(ids[0])) is not None
            and window.queue_model.lead_at(row).taken_back
        ),
        what="the view shows it taken back",
    )
    select(window, ids[:1])
    assert not window.queue_view.act_retry.isEnabled()
    assert not window.queue_view.act_resend.isEnabled()
    select(window, ids[1:])  # refused, not taken back: Retry sends it again
    assert window.queue_view.act_retry.isEnabled()


@pytest.mark.asyncio
async def test_a_control_that_changes_nothing_says_why(window: MainWindow, qtbot: QtBot) -> None:
    ids = await refused_leads(window, 1)
    dispatcher = window.desk.dispatcher
    assert dispatcher is not None
    taken: list[object] = []
    dispatcher.take_back(ids, taken.extend)
    await until(lambda: taken, what="taken back")
    window._control(Dispatcher.retry, ids)
    said = window.status_bar.currentMessage()
    assert "0 leads" not in said
    assert "taken back to the grid" in said
