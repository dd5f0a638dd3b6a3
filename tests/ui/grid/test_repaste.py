"""A re-paste in the window: rows already delivered to the chosen campaign are found before
anything is queued, and the person skips them or sends them again; the form says so too."""

from __future__ import annotations

import asyncio
import gc
import html
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio
from helpers.desks import demo_emulator, make_desk
from helpers.waits import next_signal, until
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.records import LeadQuery, State
from noojee_desk.ui.grid.controls import day_text
from noojee_desk.ui.main_window import MainWindow

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

HEADER = ["Name", "Mobile"]


def rows(numbers: Sequence[int]) -> list[list[str]]:
    return [[f"Person {i}", f"04{10_000_000 + i:08d}"] for i in numbers]


def clipboard(table: Sequence[Sequence[str]]) -> QMimeData:
    mime = QMimeData()
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table
    )
    mime.setHtml(f"<html><body><table>{body}</table></body></html>")
    mime.setText("".join("\t".join(row) + "\r\n" for row in table))
    return mime


@pytest.fixture(autouse=True)
def _collect_on_this_thread() -> Iterator[None]:
    gc.collect()
    yield
    gc.collect()


@pytest_asyncio.fixture
async def window(tmp_path: Path, qtbot: QtBot) -> AsyncIterator[MainWindow]:
    win = MainWindow(make_desk(tmp_path / "home"))
    win.show()
    await win.start(demo=True)
    await until(lambda: win.pickers.target() is not None, what="demo pickers")
    yield win
    await win.shutdown()  # its services stop before the window closes
    win.close()
    win.deleteLater()


async def paste(window: MainWindow, numbers: Sequence[int]) -> None:
    grid = window.grid
    QApplication.clipboard().setMimeData(clipboard([HEADER, *rows(numbers)]))
    loaded = asyncio.ensure_future(next_signal(grid.loaded))
    window.act_paste.trigger()
    await loaded
    await until(lambda: not grid.checking and not grid.busy, grid.checked, grid.status_changed)


async def ask(qtbot: QtBot, window: MainWindow) -> QMessageBox:
    grid = window.grid
    opened = asyncio.ensure_future(next_signal(grid.summary_opened))
    qtbot.mouseClick(grid.footer.queue_button, Qt.MouseButton.LeftButton)
    await opened
    assert grid.summary_dialog is not None
    return grid.summary_dialog


def button(box: QMessageBox, name: str) -> QPushButton:
    found = box.findChild(QPushButton, name)
    assert found is not None, f"the summary has no button {name}"
    return found


def states(window: MainWindow) -> list[State]:
    profile = window.desk.profile
    assert profile is not None
    return [lead.state for lead in window.desk.outbox.leads(LeadQuery(profile=profile.name))]


async def deliver_five(qtbot: QtBot, window: MainWindow) -> None:
    await paste(window, range(1, 6))
    box = await ask(qtbot, window)
    assert "already delivered" not in box.informativeText()
    assert box.findChild(QPushButton, "sendAgain") is None
    qtbot.mouseClick(button(box, "confirmQueue"), Qt.MouseButton.LeftButton)
    emulator = demo_emulator(window.desk)
    await until(lambda: states(window) == [State.DELIVERED] * 5, limit=30, what="5 delivered")
    assert len(emulator.leads()) == 5
    assert window.grid.model.total() == 0


@pytest.mark.asyncio
async def test_a_repaste_skips_the_rows_delivered_before(qtbot: QtBot, window: MainWindow) -> None:
    await deliver_five(qtbot, window)
    await paste(window, range(1, 7))  # the same five and one new
    box = await ask(qtbot, window)
    today = day_text(time.time())
    assert f"5 rows were already delivered to this campaign on {today}" in box.informativeText()
    assert states(window) == [State.DELIVERED] * 5  # asked before anything is queued
    skip = button(box, "confirmQueue")
    assert skip.text() == "Skip them, queue 1"
    assert button(box, "sendAgain").text() == "Send them again, queue 6"
    qtbot.mouseClick(skip, Qt.MouseButton.LeftButton)
    await until(lambda: len(states(window)) == 6, window.grid.status_changed, what="queued")
    await until(lambda: states(window) == [State.DELIVERED] * 6, limit=30, what="the new one")
    emulator = demo_emulator(window.desk)
    assert len(emulator.state()["leads"]) == 6  # 6 leads in all at the PBX
    assert {lead["fields"]["FirstPhone"] for lead in emulator.leads()} == {
        f"04{10_000_000 + i:08d}" for i in range(1, 7)
    }
    assert window.grid.model.total() == 0
    assert "5 delivered before were skipped" in window.grid.footer.status.text()


@pytest.mark.asyncio
async def test_a_repaste_sent_again_queues_every_row(qtbot: QtBot, window: MainWindow) -> None:
    await deliver_five(qtbot, window)
    await paste(window, range(1, 7))
    box = await ask(qtbot, window)
    qtbot.mouseClick(button(box, "sendAgain"), Qt.MouseButton.LeftButton)
    await until(lambda: len(states(window)) == 11, window.grid.status_changed, what="queued")
    # Without "allow duplicates" the PBX answers 105 for the phones it knows.
    await until(
        lambda: State.QUEUED not in states(window) and State.SENDING not in states(window),
        limit=30,
        what="the second batch answered",
    )
    again = states(window)[5:]
    assert again.count(State.DELIVERED) == 1
    assert all(s in (State.REJECTED, State.DUPLICATE) for s in again if s is not State.DELIVERED)
    assert len(demo_emulator(window.desk).leads()) == 6


@pytest.mark.asyncio
async def test_nothing_new_to_queue_queues_nothing(qtbot: QtBot, window: MainWindow) -> None:
    await deliver_five(qtbot, window)
    await paste(window, range(1, 6))
    box = await ask(qtbot, window)
    assert "5 rows were already delivered" in box.informativeText()
    skip = button(box, "confirmQueue")
    assert skip.text() == "Skip them"
    qtbot.mouseClick(skip, Qt.MouseButton.LeftButton)
    assert "Nothing queued" in window.grid.footer.status.text()
    assert len(states(window)) == 5
    assert window.grid.model.total() == 5  # the rows stay; nothing was handed over


@pytest.mark.asyncio
async def test_a_lead_keyed_again_is_sent_again_only_when_asked(
    qtbot: QtBot, window: MainWindow
) -> None:
    form = window.form

    def key_in() -> None:
        for name, value in (("Name", "Jane Smith"), ("FirstPhone", "0370101234")):
            box = form.findChild(QLineEdit, f"field_{name}")
            assert box is not None
            qtbot.keyClicks(box, value)
        form.submit()

    key_in()
    await until(lambda: states(window) == [State.DELIVERED], limit=30, what="delivered")
    key_in()
    if "again to queue it anyway" in form.summary.text():
        form.submit()  # the phone was delivered recently: a second Ctrl+Enter
    await until(lambda: form.again_button.isVisibleTo(form), form.send_again, what="the note")
    assert "already delivered to this campaign on" in form.summary.text()
    assert "not queued again" in form.summary.text()
    assert states(window) == [State.DELIVERED]  # not queued
    qtbot.mouseClick(form.again_button, Qt.MouseButton.LeftButton)
    await until(lambda: len(states(window)) == 2, what="queued again")
    assert not form.again_button.isVisibleTo(form)


@pytest.mark.asyncio
async def test_rows_pasted_again_under_the_same_header_are_numbered_after_the_others(
    window: MainWindow,
) -> None:
    """The second paste adds its rows (same header); the grid has one numbering, so they go on
    after the rows there instead of starting at 2 again, and a problem names one row."""
    grid = window.grid
    await paste(window, [1, 2, 3])
    QApplication.clipboard().setMimeData(
        clipboard([HEADER, *rows([4]), ["Twin", rows([1])[0][1]]])  # the second: row 2's number
    )
    loaded = asyncio.ensure_future(next_signal(grid.loaded))
    window.act_paste.trigger()
    await loaded
    await until(lambda: not grid.checking and not grid.busy, grid.checked, grid.status_changed)
    model = grid.model
    assert [model.row_number(row.id) for row in model.all_rows()] == [2, 3, 4, 5, 6]
    twin = model.all_rows()[-1]
    assert twin.cells[0] == "Twin"
    messages = [p.message for p in twin.check.problems] if twin.check else []
    assert any("row 2" in m for m in messages), messages
