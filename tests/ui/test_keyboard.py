"""The main window by keyboard alone: where the focus starts, the Tab order, a lead keyed and
queued with key events only, the shortcuts and their help page."""

from __future__ import annotations

import pytest
from helpers.desks import demo_emulator
from helpers.waits import until
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from noojee_desk import APP_NAME
from noojee_desk.ui.about import ShortcutsDialog, action_title
from noojee_desk.ui.main_window import MainWindow


def field(window: MainWindow, name: str) -> QLineEdit:
    box = window.form.findChild(QLineEdit, f"field_{name}")
    assert box is not None, f"the form has no field {name}"
    return box


async def open_demo(window: MainWindow, qtbot: QtBot) -> None:
    window.activateWindow()
    await window.start(demo=True)
    await until(lambda: window.form.target_ready, what="template, campaign and allocation")
    await until(lambda: window.focusWidget() is not None, what="a focus")


def focus_name(widget: QWidget | None) -> str:
    if widget is None:
        return "<none>"
    return widget.objectName() or type(widget).__name__


def tab_walk(window: MainWindow, steps: int, key: Qt.Key = Qt.Key.Key_Tab) -> list[str]:
    seen = []
    for _ in range(steps):
        QTest.keyClick(window.focusWidget() or window, key)
        seen.append(focus_name(window.focusWidget()))
    return seen


@pytest.mark.asyncio
async def test_the_first_field_has_the_focus_when_the_window_opens(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window, qtbot)
    assert window.focusWidget() is field(window, "Name")
    # Typing at once goes into the lead, not into the template picker.
    QTest.keyClicks(window.focusWidget(), "Jane")
    assert field(window, "Name").text() == "Jane"
    assert window.pickers.template.currentText().startswith("Home Loans")


@pytest.mark.asyncio
async def test_tab_runs_through_the_fields_then_the_options_then_queue(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window, qtbot)
    names = [spec.name for spec in window.form._layout.fields]  # type: ignore[union-attr]
    required = [n for n in names if n in ("Name", "FirstPhone")]
    assert required == ["Name", "FirstPhone"]
    seen = tab_walk(window, 13)
    fields = [f"field_{n}" for n in ("FirstPhone", "StreetAddress", "City", "State", "PostCode")]
    fields.append("field_SecondPhone")
    options = ["callbackEnabled", "priority", "contactHours", "externalId", "allowDuplicates"]
    # Required fields come first (Name has the focus, then First phone), then the rest.
    assert seen[:11] == fields + options
    assert seen[11] == "queueLead"
    assert seen[12] == "clearForm"
    assert not any("Picker" in name for name in seen)  # all three chosen: the pickers are passed


@pytest.mark.asyncio
async def test_shift_tab_from_the_first_field_skips_the_chosen_pickers(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window, qtbot)
    back = tab_walk(window, 1, Qt.Key.Key_Backtab)
    assert "Picker" not in back[0]
    # Ctrl+T still reaches them, and so do their mnemonics.
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert window.pickers.template.isAncestorOf(window.focusWidget()) or (
        window.focusWidget() is window.pickers.template
    )
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_M, Qt.KeyboardModifier.AltModifier)
    focus = window.focusWidget()
    assert focus is window.pickers.campaign or window.pickers.campaign.isAncestorOf(focus)


@pytest.mark.asyncio
async def test_a_picker_left_empty_is_reached_by_tab(window: MainWindow, qtbot: QtBot) -> None:
    await open_demo(window, qtbot)
    assert window.pickers.skipped_by_tab
    empty_allocation(window)  # nothing chosen: Tab must reach the pickers again
    assert not window.pickers.skipped_by_tab
    assert window.pickers.allocation.focusPolicy() & Qt.FocusPolicy.TabFocus
    field(window, "Name").setFocus()
    assert "Picker" in tab_walk(window, 1, Qt.Key.Key_Backtab)[0] or "refresh" in str(
        tab_walk(window, 1, Qt.Key.Key_Backtab)
    )


def empty_allocation(window: MainWindow) -> None:
    """Alt+L to the allocation, then empty it by keyboard."""
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)
    line = window.pickers.allocation.lineEdit()
    assert window.focusWidget() in (line, window.pickers.allocation)
    QTest.keyClick(line, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(line, Qt.Key.Key_Backspace)
    QTest.keyClick(line, Qt.Key.Key_Return)
    assert window.pickers.target() is None


@pytest.mark.asyncio
async def test_a_lead_keyed_and_queued_with_key_events_only(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window, qtbot)
    QTest.keyClicks(window.focusWidget(), "Kim Keyboard")
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    assert window.focusWidget() is field(window, "FirstPhone")
    QTest.keyClicks(window.focusWidget(), "03 7010 5555")
    for _ in range(15):  # on through the other fields and the options to the Queue button
        QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
        if window.focusWidget() is window.form.queue_button:
            break
    assert window.focusWidget() is window.form.queue_button
    with qtbot.waitSignal(window.form.submitted, timeout=2000):
        QTest.keyClick(window.focusWidget(), Qt.Key.Key_Space)
    await until(lambda: len(demo_emulator(window.desk).leads()) == 1, what="the lead delivered")
    lead = demo_emulator(window.desk).leads()[0]
    assert lead["fields"]["Name"] == "Kim Keyboard"
    assert lead["fields"]["FirstPhone"] == "0370105555"
    # The form is empty and the first field has the focus for the next lead.
    assert window.focusWidget() is field(window, "Name")
    assert field(window, "Name").text() == ""


@pytest.mark.asyncio
async def test_ctrl_enter_queues_and_the_focus_returns_to_the_first_field(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window, qtbot)
    QTest.keyClicks(window.focusWidget(), "Lee Enter")
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    QTest.keyClicks(window.focusWidget(), "03 7010 6666")
    with qtbot.waitSignal(window.form.submitted, timeout=2000):
        QTest.keyClick(window.focusWidget(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.focusWidget() is field(window, "Name")


@pytest.mark.asyncio
async def test_the_summary_stops_asking_for_pickers_once_all_are_chosen(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window, qtbot)
    assert "Choose a template" not in window.form.summary.text()
    empty_allocation(window)
    assert "Choose a template" in window.form.summary.text()


@pytest.mark.asyncio
async def test_every_action_has_a_key_named_in_its_tooltip_and_the_help_page(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window, qtbot)
    actions = window.shortcut_actions()
    assert len(actions) > 20
    keys: dict[str, str] = {}
    for act in actions:
        assert act.shortcuts(), f"{act.text()!r} has no shortcut"
        for key in act.shortcuts():
            text = key.toString(QKeySequence.SequenceFormat.PortableText)
            assert text not in keys, f"{text} is both {keys[text]!r} and {act.text()!r}"
            keys[text] = act.text()
        if act not in window.form.actions():
            shown = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            assert shown in act.toolTip(), f"{act.toolTip()!r} does not name {shown}"
    window.act_keys.trigger()
    dialog = window.shortcuts_dialog
    assert isinstance(dialog, ShortcutsDialog)
    assert dialog.isVisible()
    listed = {(what, keys) for _, what, keys in dialog.rows}
    for act in actions:
        if act.isVisible():
            shown = " or ".join(
                k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts()
            )
            assert (action_title(act), shown) in listed
    dialog.close()


@pytest.mark.asyncio
async def test_f1_opens_the_shortcuts_page(window: MainWindow, qtbot: QtBot) -> None:
    await open_demo(window, qtbot)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_F1)
    await until(lambda: isinstance(getattr(window, "shortcuts_dialog", None), ShortcutsDialog))
    window.shortcuts_dialog.close()


@pytest.mark.asyncio
async def test_ctrl_p_pauses_from_the_menus_action_only(window: MainWindow, qtbot: QtBot) -> None:
    await open_demo(window, qtbot)
    assert window.queue_view.pause.shortcut().isEmpty()  # one owner of Ctrl+P: no ambiguity
    await until(lambda: window.desk.dispatcher is not None and window.desk.dispatcher.running)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    await until(
        lambda: window.desk.dispatcher is not None and window.desk.dispatcher.paused_reason,
        what="paused by Ctrl+P",
    )


@pytest.mark.asyncio
async def test_the_title_names_the_app_once(window: MainWindow, qtbot: QtBot) -> None:
    await open_demo(window, qtbot)
    title = window.windowTitle()
    assert title.count(APP_NAME) == 1
    # Ending with the app's display name, the platform does not add it a second time.
    assert title.endswith(APP_NAME)
    assert "DEMO" in title


def test_action_titles_drop_mnemonics_and_dots() -> None:
    act = QAction("&Open leads file…")
    assert action_title(act) == "Open leads file"
    assert action_title(QAction("Save && go")) == "Save & go"


QUIT_DRIVER = r"""
import argparse, sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import noojee_desk.app as app_module
from noojee_desk.ui.main_window import MainWindow

def close_when_sending():
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    desk = windows[0].desk if windows else None
    if desk is None or desk.dispatcher is None or not desk.dispatcher.running:
        QTimer.singleShot(100, close_when_sending)
        return
    if not windows[0].form.target_ready:
        QTimer.singleShot(100, close_when_sending)
        return
    print("CLOSING", time.time(), flush=True)
    windows[0].act_quit.trigger()

app_module.make_app()
QTimer.singleShot(300, close_when_sending)
args = argparse.Namespace(data_dir=sys.argv[1], demo=True, import_connection=None)
sys.exit(app_module.run_app(args))
"""


def test_quitting_takes_under_half_a_second_when_nothing_is_in_flight(tmp_path) -> None:
    """The whole process, from Ctrl+Q's action to its end: services stopped, queue closed."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)}
    best = None
    for _ in range(2):  # the better of two: a loaded machine may stall one
        proc = subprocess.Popen(
            [sys.executable, "-c", QUIT_DRIVER, str(tmp_path / "home")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            out, _ = proc.communicate(timeout=90)  # returns when the process has ended
        finally:
            proc.kill()
        ended = time.time()
        assert proc.returncode == 0
        said = [line for line in out.splitlines() if line.startswith("CLOSING")]
        assert said, "the window never got to sending"
        closing = float(said[0].split()[1])
        took = ended - closing
        best = took if best is None else min(best, took)
    assert best is not None
    assert best < 0.5, f"quitting took {best:.2f} s"


@pytest.mark.asyncio
async def test_ctrl_q_ends_the_window_within_half_a_second(tmp_path, qtbot: QtBot) -> None:
    """After a lead is delivered (nothing in flight): stop sending, close client and queue."""
    import asyncio
    import time

    import shiboken6
    from helpers.desks import make_desk
    from PySide6.QtWidgets import QApplication

    from noojee_desk.app import run_window

    desk = make_desk(tmp_path / "home")
    task = asyncio.ensure_future(run_window(desk, start_demo=True))
    await until(lambda: desk.dispatcher is not None and desk.dispatcher.running, what="running")
    window = next(
        w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.desk is desk
    )
    await until(lambda: window.form.target_ready, what="ready")
    QTest.keyClicks(window.focusWidget(), "Quinn Quit")
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    QTest.keyClicks(window.focusWidget(), "03 7010 7777")
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    await until(lambda: window.status_bar.counts_text == "Delivered 1", what="delivered")
    started = time.perf_counter()
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert await asyncio.wait_for(task, 10) == 0
    assert time.perf_counter() - started < 0.5
    assert desk.dispatcher is None
    assert desk.client is None
    shiboken6.delete(window)  # no closed window left for a later test to find


@pytest.mark.asyncio
async def test_closing_with_the_cursor_in_a_phone_field_raises_nothing(
    tmp_path, qtbot: QtBot
) -> None:
    """The focus now rests in the form: a phone box losing it as the window goes must not
    check a form whose other boxes are already gone (pytest-qt fails on such an error)."""
    import shiboken6
    from helpers.desks import make_desk

    win = MainWindow(make_desk(tmp_path / "home"))
    win.show()
    await open_demo(win, qtbot)
    QTest.keyClick(win.focusWidget(), Qt.Key.Key_Tab)
    phone = field(win, "FirstPhone")
    assert win.focusWidget() is phone
    QTest.keyClicks(phone, "0491 570 159")
    # A new layout replaces the boxes while one has the focus: the first field gets it back.
    layout = win.form._layout
    assert layout is not None
    win.form.set_layout(layout, win.desk.validator(layout), "Australia/Sydney")
    await until(lambda: win.focusWidget() is field(win, "Name"), what="the first field")
    QTest.keyClick(win.focusWidget(), Qt.Key.Key_Tab)
    await win.shutdown()
    shiboken6.delete(win)


def test_a_fresh_form_offers_a_callback_time_near_now_and_readable_labels(qtbot: QtBot) -> None:
    """Before a template is chosen the callback box shows now + 1 h, not 1 Jan 2000; labels
    are the keys made readable while the key stays what is sent."""
    from datetime import UTC, datetime

    from PySide6.QtWidgets import QFormLayout, QLabel

    from noojee_desk.core.leads.layouts import default_layout
    from noojee_desk.core.leads.validate import Validator
    from noojee_desk.ui.lead_form import LeadForm

    form = LeadForm()
    qtbot.addWidget(form)
    shown = form.callback.dateTime().date()
    assert abs(shown.year() - datetime.now(UTC).year) <= 1
    layout = default_layout()
    form.set_layout(layout, Validator(layout), "Australia/Sydney")
    labels = {}
    for row in range(form.fields_form.rowCount()):
        item = form.fields_form.itemAt(row, QFormLayout.ItemRole.LabelRole)
        if item is not None and isinstance(item.widget(), QLabel):
            labels[item.widget().text()] = row
    assert "Street address" in labels
    assert "First phone ☎" in labels
    assert form.findChild(QLineEdit, "field_StreetAddress") is not None
