"""The main window end to end on the qasync loop: demo mode, duplicates, an outage, the keyring."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path

import pytest
from helpers.desks import demo_emulator, make_desk
from helpers.waits import until
from helpers.windows import close_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from noojee_desk.core import paths
from noojee_desk.core.delivery.records import LeadInput, State, Target
from noojee_desk.core.profiles.secrets import KeyStore
from noojee_desk.core.profiles.settings import Profile
from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.server import SimThread
from noojee_desk.ui.banner import BannerReason
from noojee_desk.ui.main_window import MainWindow
from noojee_desk.ui.queue.model import COL_BATCH, COL_STATUS


def states(window: MainWindow) -> list[str]:
    model = window.queue_model
    return [model.index(r, COL_STATUS).data() for r in range(model.rowCount())]


def field(window: MainWindow, name: str) -> QLineEdit:
    """The form's box for the field ``name``."""
    box = window.form.findChild(QLineEdit, f"field_{name}")
    assert box is not None, f"the form has no field {name}"
    return box


def note(window: MainWindow, name: str) -> QLabel:
    """The note under the form's box for the field ``name``."""
    label = window.form.findChild(QLabel, f"note_{name}")
    assert label is not None, f"the form has no note for {name}"
    return label


async def type_lead(qtbot: QtBot, window: MainWindow, name: str, phone: str) -> None:
    qtbot.keyClicks(field(window, "Name"), name)
    qtbot.keyClicks(field(window, "FirstPhone"), phone)
    qtbot.keyClick(
        field(window, "FirstPhone"), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
    )


@pytest.mark.asyncio
async def test_first_run_offers_connect_and_demo(window: MainWindow, qtbot: QtBot) -> None:
    await window.start()
    assert window.stack.currentWidget() is window.welcome
    qtbot.mouseClick(window.welcome.demo_button, Qt.MouseButton.LeftButton)
    await until(lambda: window.pickers.target() is not None, what="demo pickers")
    assert window.stack.currentWidget() is window.work
    assert "DEMO" in window.windowTitle()
    assert window.demo_banner.isVisible()


@pytest.mark.asyncio
async def test_demo_pick_type_ctrl_enter_delivered(window: MainWindow, qtbot: QtBot) -> None:
    await window.start(demo=True)
    pickers = window.pickers
    await until(lambda: pickers.allocation.count() > 0, what="lists loaded")
    # Pick another campaign and allocation by keyboard, as a person would.
    pickers.campaign.setCurrentIndex(pickers.campaign.findData(44))
    pickers.campaign.activated.emit(pickers.campaign.currentIndex())
    await until(lambda: pickers.allocation.findData(111) >= 0, what="allocations of 44")
    pickers.allocation.setCurrentIndex(pickers.allocation.findData(111))
    pickers.allocation.activated.emit(pickers.allocation.currentIndex())
    assert pickers.target() == Target(3, 44, 111)

    await type_lead(qtbot, window, "Jane Smith", "03 7010 1234")
    await until(lambda: states(window) == ["Delivered"], what="the lead delivered")
    assert field(window, "Name").text() == ""  # the form cleared for the next lead
    assert window.focusWidget() is field(window, "Name")  # focus back on the first field
    assert pickers.target() == Target(3, 44, 111)  # the pickers stay
    emulator = demo_emulator(window.desk)
    leads = emulator.leads()
    assert len(leads) == 1
    assert leads[0]["campaign_id"] == 44
    assert leads[0]["fields"]["FirstPhone"] == "0370101234"
    await until(lambda: window.status_bar.counts_text == "Delivered 1", what="status bar counts")


@pytest.mark.asyncio
async def test_invalid_lead_is_not_queued(window: MainWindow, qtbot: QtBot) -> None:
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    await type_lead(qtbot, window, "No Phone", "")
    assert window.queue_model.rowCount() == 0
    assert window.form.summary.text() == "1 problem to fix before queueing."
    assert note(window, "FirstPhone").isVisibleTo(window.form)


@pytest.mark.asyncio
async def test_rejected_duplicate_resent_with_allow_duplicates(
    window: MainWindow, qtbot: QtBot
) -> None:
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    await type_lead(qtbot, window, "Jane Smith", "0370101234")
    await until(lambda: states(window) == ["Delivered"])
    await type_lead(qtbot, window, "Jane Again", "0370101234")
    summary = window.form.summary.text()
    assert "again" in summary  # warned: delivered recently; a second Ctrl+Enter queues it
    qtbot.keyClick(
        field(window, "FirstPhone"), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
    )
    await until(lambda: states(window) == ["Delivered", "Rejected"], what="105")
    view = window.queue_view
    view.table.selectRow(1)
    assert view.act_resend.isEnabled()
    view.act_resend.trigger()
    await until(lambda: states(window) == ["Delivered", "Delivered"], what="resent")
    assert len(demo_emulator(window.desk).leads()) == 2
    # Still selected, now delivered: nothing left to resend or cancel.
    assert view.table.selectionModel().isRowSelected(1)
    assert not view.act_resend.isEnabled()
    assert not view.act_cancel.isEnabled()


@pytest.mark.asyncio
async def test_a_held_lead_is_not_sent_until_retried(window: MainWindow, qtbot: QtBot) -> None:
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    view = window.queue_view
    qtbot.mouseClick(view.pause, Qt.MouseButton.LeftButton)  # nothing goes out while we choose
    assert window.desk.dispatcher.paused_reason == "Paused by you"
    leads = [LeadInput({"Name": n, "FirstPhone": f"037010000{i}"}) for i, n in enumerate("AB")]
    await window.enqueue(Target(3, 42, 101), leads, False, "form")
    assert states(window) == ["Queued", "Queued"]
    view.table.selectRow(0)
    assert view.act_hold.isEnabled()
    assert view.act_hold in window.queue_menu.actions()
    view.act_hold.trigger()
    await until(lambda: states(window) == ["On hold", "Queued"], what="A held")
    assert not view.act_hold.isEnabled()  # still selected, now held
    assert view.act_retry.isEnabled()

    qtbot.mouseClick(view.pause, Qt.MouseButton.LeftButton)  # resume
    await until(lambda: states(window) == ["On hold", "Delivered"], what="B delivered")
    await until(lambda: window.status_bar.counts_text == "Delivered 1 · On hold 1")
    await asyncio.sleep(0.3)  # a dispatcher that would send A has had its chance
    emulator = demo_emulator(window.desk)
    assert [lead["fields"]["Name"] for lead in emulator.leads()] == ["B"]
    assert window.desk.outbox.counts("Demo")[State.HELD] == 1

    view.table.selectRow(0)
    view.act_retry.trigger()
    await until(lambda: states(window) == ["Delivered", "Delivered"], what="A delivered")
    assert sorted(lead["fields"]["Name"] for lead in emulator.leads()) == ["A", "B"]
    await until(lambda: window.status_bar.counts_text == "Delivered 2")


@pytest.mark.asyncio
async def test_a_refused_listing_keeps_its_banner_while_the_queue_runs(
    window: MainWindow, qtbot: QtBot
) -> None:
    """Only the queue's own "needs attention" banner is taken down by the queue's figures."""
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    window.pickers.blocked.emit("The PBX refused the list of campaigns.")
    banner = window.problem_banner
    assert banner.reason is BannerReason.CONNECTION_BLOCKED
    await window.enqueue(
        Target(3, 42, 101), [LeadInput({"Name": "A", "FirstPhone": "0370100001"})], False, "form"
    )
    await until(lambda: window.status_bar.counts_text == "Delivered 1", what="figures shown")
    assert banner.isVisible()
    assert banner.text == "The PBX refused the list of campaigns."
    button = banner.findChild(QPushButton, "problemBannerAction0")
    assert button.text() == "Connection settings…"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.connect_dialog.isVisible()
    window.connect_dialog.reject()


@pytest.mark.asyncio
async def test_a_damaged_settings_file_is_still_said_once_the_demo_opens(
    tmp_path: Path, qtbot: QtBot
) -> None:
    home = tmp_path / "home"
    paths.resolve(home).ensure().settings.write_text("{not json", encoding="utf-8")
    win = MainWindow(make_desk(home))
    win.show()
    try:
        await win.start(demo=True)
        await until(lambda: win.pickers.target() is not None)
        assert win.problem_banner.isVisible()
        assert win.problem_banner.reason is BannerReason.SETTINGS_DAMAGED
        assert "damaged" in win.problem_banner.text
    finally:
        await close_window(win)


@pytest.mark.asyncio
async def test_server_killed_mid_batch_offline_then_recovers(tmp_path: Path, qtbot: QtBot) -> None:
    sim = SimThread(min_service=0.02, jitter=0.0)
    sim.start()
    desk = make_desk(tmp_path / "home", demo=False)
    profile = Profile("Office", server_url=sim.url)
    desk.keys.set_for_session("Office", DEMO_API_KEY)
    desk.settings.upsert(profile)
    desk.settings.active_profile = "Office"
    win = MainWindow(desk)
    win.show()
    try:
        await win.start()
        await until(lambda: win.pickers.template.count() > 0, what="templates over HTTP")
        target = Target(3, 42, 101)
        leads = [
            LeadInput({"Name": f"P{i}", "FirstPhone": f"03701{i:05d}"}, row=i + 1)
            for i in range(40)
        ]
        await win.enqueue(target, leads, False, "Outage test")
        await until(lambda: "Delivered" in states(win), what="first deliveries")
        sim.stop_server()
        await until(lambda: "Offline" in win.status_bar.connection_text, what="offline shown")
        assert "retrying at" in win.status_bar.connection_text
        sim.start_server()
        await until(lambda: set(states(win)) == {"Delivered"}, limit=30, what="recovery")
        assert "Connected" in win.status_bar.connection_text
        inserted = sim.state()["leads"]
        assert sorted(x["fields"]["Name"] for x in inserted) == sorted(f"P{i}" for i in range(40))
    finally:
        await close_window(win)
        sim.close()


@pytest.mark.asyncio
async def test_wrong_key_pauses_queue_with_needs_attention(tmp_path: Path, qtbot: QtBot) -> None:
    with SimThread(min_service=0.01, jitter=0.0) as sim:
        desk = make_desk(tmp_path / "home", demo=False)
        desk.keys.set_for_session("Office", "wrong-key")
        desk.settings.upsert(Profile("Office", server_url=sim.url))
        desk.settings.active_profile = "Office"
        win = MainWindow(desk)
        win.show()
        try:
            await win.start()
            await until(lambda: "rejected the API key" in win.problem_banner.text)
            assert win.problem_banner.reason is BannerReason.CONNECTION_BLOCKED
            await win.enqueue(
                Target(3, 42, 101), [LeadInput({"Name": "A", "FirstPhone": "0370100001"})],
                False, "form",
            )  # fmt: skip
            await until(lambda: "Needs attention" in win.status_bar.connection_text)
            assert states(win) == ["Needs attention"]
            assert win.problem_banner.reason is BannerReason.QUEUE_NEEDS_ATTENTION
            assert win.act_pause.text() == "&Resume sending"
            assert desk.outbox.counts("Office")[State.QUEUED] == 1  # nothing marked failed
        finally:
            await close_window(win)


@pytest.mark.asyncio
async def test_closing_with_queued_leads_says_they_stay(window: MainWindow, qtbot: QtBot) -> None:
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    window.desk.dispatcher.pause("test")
    await window.enqueue(
        Target(3, 42, 101), [LeadInput({"Name": "A", "FirstPhone": "0370100001"})], False, "form"
    )
    window.close()
    box = window.close_box
    assert box.isVisible()
    assert box.text().startswith("1 lead is still waiting to be sent. It stays safely queued")
    assert window.isVisible()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert window.isVisible()
    await window.enqueue(
        Target(3, 42, 101), [LeadInput({"Name": "B", "FirstPhone": "0370100002"})], False, "form"
    )
    window.close()
    assert window.close_box.text().startswith("2 leads are still waiting to be sent. They stay")
    window.close_box.button(QMessageBox.StandardButton.Cancel).click()


@pytest.mark.asyncio
async def test_a_restarted_window_shows_the_queue_it_left(tmp_path: Path, qtbot: QtBot) -> None:
    home = tmp_path / "home"
    first = MainWindow(make_desk(home))
    first.show()
    await first.start(demo=True)
    await until(lambda: first.pickers.target() is not None)
    leads = [LeadInput({"Name": n, "FirstPhone": f"037010000{i}"}) for i, n in enumerate("AB")]
    await first.enqueue(Target(3, 42, 101), leads, False, "form")
    await until(lambda: states(first) == ["Delivered", "Delivered"], what="delivery")
    await close_window(first)

    second = MainWindow(make_desk(home))  # delivered leads send no more events: only a read
    second.show()
    try:
        await second.start(demo=True)
        await until(lambda: second.queue_model.rowCount() == 2, what="the earlier leads")
        assert states(second) == ["Delivered", "Delivered"]
    finally:
        await close_window(second)


@pytest.mark.asyncio
async def test_one_template_pick_applies_its_layout_once(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each layout change rebuilds the form and checks the whole grid again."""
    applied: list[object] = []
    real = window.grid.set_layout
    monkeypatch.setattr(window.grid, "set_layout", lambda *a: (applied.append(a[0]), real(*a)))
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    assert len(applied) == 1


@pytest.mark.asyncio
async def test_ctrl_o_opens_a_leads_file_from_either_tab(window: MainWindow, qtbot: QtBot) -> None:
    await window.start(demo=True)
    for tab in (window.form, window.grid):  # the grid's own Open button must not claim Ctrl+O
        window.entry_tabs.setCurrentWidget(tab)
        window.grid.file_dialog = None
        qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
        dialog = window.grid.file_dialog
        assert dialog is not None
        assert dialog.isVisible()
        assert window.entry_tabs.currentWidget() is window.grid
        dialog.reject()


@pytest.mark.asyncio
@pytest.mark.keyring
async def test_connection_dialog_keeps_key_in_keyring_only(
    tmp_path: Path, qtbot: QtBot, os_keyring: object
) -> None:
    service = f"noojee-desk-test-{uuid.uuid4().hex[:8]}"
    key = f"key-{uuid.uuid4().hex}"
    with SimThread(api_key=key, min_service=0.01, jitter=0.0) as sim:
        desk = make_desk(tmp_path / "home", demo=False)
        desk.keys = KeyStore(service=service)
        win = MainWindow(desk)
        win.show()
        try:
            await win.start()
            win.new_connection()
            dialog = win.connect_dialog
            qtbot.keyClicks(dialog.name, "Production")
            qtbot.keyClicks(dialog.url, sim.url)
            qtbot.keyClicks(dialog.key, key)
            qtbot.mouseClick(dialog.test, Qt.MouseButton.LeftButton)
            await until(lambda: "Connected" in dialog.status.text(), what="test connection")
            dialog.buttons.accepted.emit()
            await until(lambda: desk.profile is not None and desk.client is not None)
            await until(lambda: win.pickers.template.count() > 0)
            assert await desk.keys.get("Production") == key
            text = desk.paths.settings.read_text(encoding="utf-8")
            assert key not in text
            assert json.loads(text)["active_profile"] == "Production"
            await desk.forget_key("Production")
            assert await desk.keys.get("Production") is None
        finally:
            await close_window(win)
            await KeyStore(service=service).delete("Production")


@pytest.mark.asyncio
async def test_quit_from_the_menu_ends_main_after_a_clean_shutdown(tmp_path: Path) -> None:
    from noojee_desk.app import run_window

    desk = make_desk(tmp_path / "home")
    task = asyncio.ensure_future(run_window(desk, start_demo=True))
    await until(lambda: desk.dispatcher is not None and desk.dispatcher.running, what="running")
    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
    window.act_quit.trigger()
    assert await asyncio.wait_for(task, 10) == 0
    assert desk.dispatcher is None  # stopped on a running loop, not cut off
    assert desk.client is None


@pytest.mark.asyncio
async def test_export_csv_and_xlsx_and_copy_failed_rows(window: MainWindow, tmp_path: Path) -> None:
    import csv

    import openpyxl

    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    leads = [
        LeadInput({"Name": "Good", "FirstPhone": "0370100001"}, row=1),
        LeadInput({"Name": "Do Not Call", "FirstPhone": "0299999999"}, row=2),
    ]
    await window.enqueue(Target(3, 42, 101), leads, False, "export test")
    await until(lambda: sorted(states(window)) == ["Delivered", "Rejected"])

    for kind in ("csv", "xlsx"):
        path = tmp_path / f"results.{kind}"
        window.export_results(kind)
        window.export_dialog.fileSelected.emit(str(path))
        # Done as the user sees it: the file in place and the export's progress gone (a second
        # export asked for while the first still shows is refused, with a message).
        await until(
            lambda path=path: path.exists() and not window.export_progress.isVisible(),
            what=f"{kind} written",
        )
        if kind == "csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                table = list(csv.reader(handle))
        else:
            sheet = openpyxl.load_workbook(path, read_only=True).active
            table = [[c if c is not None else "" for c in row] for row in sheet.values]
        header, rows = table[0], table[1:]
        by_name = {row[header.index("Name")]: row for row in rows}
        assert by_name["Good"][header.index("Status")] == "delivered"
        assert by_name["Do Not Call"][header.index("Code")] == "104"
        assert "Do Not Call" in by_name["Do Not Call"][header.index("Reason")]

    window.copy_failed_rows()
    text = QApplication.clipboard().text()
    lines = text.splitlines()
    assert lines[0].split("\t")[0] == "Name"
    assert len(lines) == 2
    assert "0299999999" in lines[1]


@pytest.mark.asyncio
async def test_editing_the_address_asks_for_the_key_again(tmp_path: Path, qtbot: QtBot) -> None:
    """The stored key never goes to a new address: Test and Save both ask for it."""
    from helpers.memory_keyring import MemoryKeyring

    key = f"key-{uuid.uuid4().hex}"
    with SimThread(api_key=key, min_service=0.01, jitter=0.0) as sim:
        desk = make_desk(tmp_path / "home", demo=False)
        desk.keys = KeyStore(service="t", backend=MemoryKeyring())
        await desk.save_profile(Profile("Prod", server_url=sim.url), key, session_only=False)
        win = MainWindow(desk)
        win.show()
        try:
            await win.start()
            await until(lambda: desk.client is not None, what="connected")
            win.edit_connection()
            dialog = win.connect_dialog
            dialog.url.setText(sim.url.replace("127.0.0.1", "localhost"))
            qtbot.mouseClick(dialog.test, Qt.MouseButton.LeftButton)
            await until(lambda: "Enter the API key" in dialog.status.text(), what="asked")
            dialog.buttons.accepted.emit()
            await until(lambda: "address changed" in dialog.status.text(), what="refused")
            assert dialog.isVisible()
            assert await desk.keys.get("Prod", server=sim.url) == key
            dialog.reject()
        finally:
            await close_window(win)


async def _queue_from_another_process(
    window: MainWindow, count: int, phones: str, source: str, *, first_row: int
) -> None:
    """``count`` leads "Far i" queued into the window's profile by another process (as ``send
    --profile`` does), their phones ``phones`` and three digits."""
    import sys

    script = (
        "import sys\n"
        "from noojee_desk.core.delivery.outbox import Outbox\n"
        "from noojee_desk.core.delivery.records import LeadInput, Target\n"
        "path, profile, count, phones, source, first = sys.argv[1:7]\n"
        "leads = [LeadInput({'Name': f'Far {i}', 'FirstPhone': f'{phones}{i:03d}'}, "
        "row=i + int(first)) for i in range(int(count))]\n"
        "with Outbox(path) as box:\n"
        "    box.enqueue(profile, Target(3, 42, 101), leads, allow_duplicates=False, "
        "source=source)\n"
    )
    profile = window.desk.profile
    assert profile is not None
    args = (str(window.desk.paths.outbox), profile.name, str(count), phones, source)
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args, str(first_row)
    )
    assert await sender.wait() == 0


@pytest.mark.asyncio
async def test_leads_another_process_queues_appear_within_a_second(
    window: MainWindow, qtbot: QtBot
) -> None:
    """``noojee-desk send --profile P`` while the window has P open: a second process writes
    to the same queue file, and its leads show up without a restart."""
    import time

    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    window.desk.dispatcher.pause("test")
    await until(lambda: not window.queue_model.loading)
    before = window.queue_model.rowCount()
    await _queue_from_another_process(window, 3, "0370199", "from send", first_row=1)
    written = time.monotonic()
    await until(lambda: window.queue_model.rowCount() == before + 3, limit=5)
    assert time.monotonic() - written < 1.5
    assert window.queue_model.lead_at(before + 2).fields["Name"] == "Far 2"


@pytest.mark.asyncio
async def test_leads_another_process_queues_are_sent_and_shown_once_each(
    window: MainWindow,
) -> None:
    """``send --profile P`` while the window has P open and sending: the window's dispatcher
    (woken by the other process's commit) delivers the new batch within seconds, and each of
    its leads is one row of the queue view, delivered, named by its batch."""
    import time

    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    await until(lambda: not window.queue_model.loading)
    await asyncio.sleep(1.0)  # the dispatcher idles: nothing queued
    profile = window.desk.profile
    assert profile is not None
    await _queue_from_another_process(window, 20, "0370188", "send far.csv", first_row=2)
    written = time.monotonic()
    outbox = window.desk.outbox
    await until(lambda: outbox.counts(profile.name)[State.DELIVERED] == 20, limit=10)
    assert time.monotonic() - written < 5
    model = window.queue_model
    await until(
        lambda: (
            model.rowCount() == 20
            and all(model.lead_at(r).state is State.DELIVERED for r in range(20))
        ),
        limit=5,
        what="each lead shown once, delivered",
    )
    assert sorted(model.lead_at(r).fields["Name"] for r in range(20)) == sorted(
        f"Far {i}" for i in range(20)
    )
    batches = {model.index(r, COL_BATCH).data() for r in range(20)}
    assert len(batches) == 1
    assert batches.pop().startswith("send far.csv (")
    assert {model.index(r, COL_STATUS).data() for r in range(20)} == {"Delivered"}


@pytest.mark.asyncio
async def test_leads_another_process_sends_are_shown_as_it_records_them(
    window: MainWindow,
) -> None:
    """The window opened while another process (``send``) has the queue: what that process
    records (here, its leads cancelled) shows in the rows already read and in the batch bars
    within a second or so, without a reload; when it ends, the window sends the queue."""
    import time

    from noojee_desk.core.delivery.outbox import Outbox

    outbox_path = window.desk.paths.outbox
    outbox_path.parent.mkdir(parents=True, exist_ok=True)
    other = Outbox(outbox_path)  # the other process's connection
    lock = other.lock_profile("Demo")
    lock.acquire()  # it has the demo queue: the window's dispatcher waits for it
    try:
        await window.start(demo=True)
        await until(lambda: window.pickers.target() is not None)
        dispatcher = window.desk.dispatcher
        assert dispatcher is not None
        await until(lambda: dispatcher.busy_with is not None, what="the queue busy")
        leads = [
            LeadInput({"Name": f"Far {i}", "FirstPhone": f"0370177{i:03d}"}, row=i + 2)
            for i in range(3)
        ]
        batch = other.enqueue("Demo", Target(3, 42, 101), leads, allow_duplicates=False,
                              source="send far.csv")  # fmt: skip
        model = window.queue_model
        await until(lambda: model.rowCount() == 3, what="the leads shown")
        assert [model.index(r, COL_STATUS).data() for r in range(3)] == ["Queued"] * 3
        bars = window.queue_view.batches._bars
        await until(lambda: batch.id in bars, what="the batch bar")
        assert "0 of 3 delivered" in bars[batch.id][0].text()
        ids = [model.lead_at(r).id for r in range(3)]
        other.cancel(ids[:2])
        changed = time.monotonic()
        await until(
            lambda: (
                [model.index(r, COL_STATUS).data() for r in range(3)]
                == ["Cancelled", "Cancelled", "Queued"]
            ),
            limit=5,
            what="the other process's changes shown",
        )
        assert time.monotonic() - changed < 2.5
        other.cancel(ids[2:])
        await until(lambda: batch.id not in bars, limit=5, what="the finished batch's bar gone")
        lock.release()  # the other process ends: the window takes the queue over by itself
        await until(lambda: dispatcher.busy_with is None, limit=5, what="the queue taken over")
        other.requeue(ids)
        await until(
            lambda: other.counts("Demo")[State.DELIVERED] == 3, limit=10, what="sent by the window"
        )
    finally:
        lock.release()
        other.close()


@pytest.mark.asyncio
async def test_an_export_shows_its_progress_and_can_be_cancelled(
    window: MainWindow, tmp_path: Path
) -> None:
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None)
    window.desk.dispatcher.pause("test")
    profile = window.desk.profile
    assert profile is not None
    leads = [LeadInput({"Name": f"P{i}", "FirstPhone": f"0370{i:06d}"}) for i in range(60000)]
    window.desk.outbox.enqueue(profile.name, Target(3, 42, 101), leads, allow_duplicates=False,
                               source="big")  # fmt: skip
    progress = window.export_progress
    path = tmp_path / "results.csv"
    window.export_results("csv")
    window.export_dialog.fileSelected.emit(str(path))
    await until(lambda: progress.isVisible(), what="the progress bar")
    await until(lambda: progress.bar.maximum() == 60000, what="the count", every=0.005)
    progress.cancel.click()
    await until(lambda: not progress.isVisible(), what="the export to stop")
    assert "cancelled" in window.status_bar.currentMessage()
    assert not path.exists()

    window.export_results("csv")  # and the next one runs to its end
    window.export_dialog.fileSelected.emit(str(path))
    # The file is in place a moment before the worker's answer reaches the window.
    await until(lambda: path.exists() and not progress.isVisible(), what="the export to end")
    assert "Exported 60,000 leads" in window.status_bar.currentMessage()


@pytest.mark.asyncio
async def test_the_checks_are_built_in_a_worker_and_nothing_is_queued_before(
    window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The phone rules take a tenth of a second to build the first time: a worker builds them
    while the lists load, and until they exist neither the form nor the grid can queue."""
    from noojee_desk.ui import main_window as main_window_module

    release = threading.Event()
    built_on: list[int] = []
    real = main_window_module.prepare_checks

    def slow_prepare(settings: object) -> None:
        built_on.append(threading.get_ident())
        assert release.wait(20)
        real(settings)  # type: ignore[arg-type]

    monkeypatch.setattr(main_window_module, "prepare_checks", slow_prepare)
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None, what="demo pickers")
    await asyncio.sleep(0.3)  # the loop runs on meanwhile: the UI thread is not waiting
    assert built_on
    assert threading.get_ident() not in built_on
    assert not window.form.target_ready
    assert not window.form.queue_button.isEnabled()
    assert window.form.summary.text() == "Getting the checks ready…"
    assert not window.grid.footer.queue_button.isEnabled()
    window.form.submit()  # Ctrl+Enter now queues nothing
    assert window.desk.outbox.counts("Demo")[State.QUEUED] == 0

    release.set()
    await until(lambda: window.form.target_ready, what="the form ready")
    assert window.form.queue_button.isEnabled()
    assert window.form.summary.text() == window.form.READY_TEXT
    await type_lead(qtbot, window, "Jane Smith", "03 7010 1234")
    await until(lambda: window.desk.outbox.counts("Demo")[State.DELIVERED] == 1, what="sent")
    assert len(built_on) == 1  # built once, shared by the form and the grid


def _fail_the_dispatcher_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher's first launch raises, as a bug would; the next ones run as usual."""
    from noojee_desk.core.delivery.dispatcher import Dispatcher

    launch = Dispatcher._launch
    failed: list[int] = []

    async def buggy(self: Dispatcher) -> None:
        if not failed:
            failed.append(1)
            raise RuntimeError("a bug in the dispatcher")
        await launch(self)

    monkeypatch.setattr(Dispatcher, "_launch", buggy)


@pytest.mark.asyncio
async def test_sending_stopped_by_an_error_is_said_until_it_starts_again(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_the_dispatcher_once(monkeypatch)
    window.desk.restart_waits = (1.0,)
    await window.start(demo=True)
    banner = window.problem_banner
    await until(lambda: banner.reason is BannerReason.SENDING_STOPPED, what="the banner")
    assert "starts again by itself in 1 s" in banner.text
    await until(lambda: banner.reason is None, what="the banner gone")
    assert "Sending started again." in window.status_bar.currentMessage()


@pytest.mark.asyncio
async def test_the_sending_stopped_banner_counts_down_to_the_start_again(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_the_dispatcher_once(monkeypatch)
    window.desk.restart_waits = (3.0,)
    await window.start(demo=True)
    banner = window.problem_banner
    await until(lambda: banner.reason is BannerReason.SENDING_STOPPED, what="the banner")
    assert "starts again by itself in 3 s" in banner.text
    assert "RuntimeError: a bug in the dispatcher" in banner.text
    await until(lambda: "in 2 s" in banner.text or "in 1 s" in banner.text, what="a count")
    await until(lambda: banner.reason is None, what="the banner gone")
