"""The queue view's controls over a large selection: decided without reading every selected lead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import Lead, LeadInput, LeadQuery, Target
from noojee_desk.ui.queue.model import QueueModel
from noojee_desk.ui.queue.view import SELECTION_READ, QueueView

TARGET = Target(3, 42, 101)


def test_selecting_every_row_reads_only_the_rows_shown(
    qtbot: QtBot, tmp_path: Path, qtmodeltester: ModelTester
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    count = SELECTION_READ * 4
    leads = [LeadInput({"Name": f"P{i}", "FirstPhone": f"03701{i:05d}"}) for i in range(count)]
    batch = outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    ids = list(range(batch.first_lead_id or 0, (batch.last_lead_id or 0) + 1))
    read: list[int] = []

    def pages(wanted: Sequence[int]) -> dict[int, Lead]:
        read.extend(wanted)
        return outbox.leads_by_id(wanted)

    model = QueueModel()
    model.attach(lambda query, after: outbox.lead_ids(query, after=after), pages)
    view = QueueView(model)
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    model.set_profile("Demo")
    qtbot.waitExposed(view)
    qtmodeltester.check(model)
    read.clear()
    view.table.selectAll()
    assert view.selected_count() == count
    assert len(read) < SELECTION_READ  # the rows painted, not every selected lead
    for act in (view.act_retry, view.act_cancel, view.act_hold, view.act_resend):
        assert act.isEnabled()  # the control says how many it changed
    assert not view.act_details.isEnabled()
    read.clear()
    model.update(outbox.leads(LeadQuery(lead_ids=[ids[5]])))  # a live change while all selected
    assert len(read) < SELECTION_READ
    with qtbot.waitSignal(view.cancel_requested) as asked:
        view.act_cancel.trigger()
    assert asked.args == [ids]
    assert len(read) < SELECTION_READ

    # A few rows selected: their states decide again.
    outbox.cancel(ids[:2])
    model.update(outbox.leads(LeadQuery(lead_ids=ids[:2])))
    view.table.clearSelection()
    view.table.selectRow(0)
    assert not view.act_hold.isEnabled()
    assert view.act_retry.isEnabled()
    assert view.act_details.isEnabled()
