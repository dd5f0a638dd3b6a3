"""The window on small and scaled screens: 1024x700, 1366x768 at 125 % and 150 %.

Each case is a real process on Qt's offscreen platform given a screen of that size (its
``configfile``) and ``QT_SCALE_FACTOR``: the window is built as the app builds it, fitted to the
screen, and reports what a person would see. In-process tests cover the saved geometry and the
splitter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.desks import make_desk
from helpers.waits import until
from helpers.windows import close_window
from PySide6.QtCore import QPoint, QRect, QSettings
from PySide6.QtWidgets import QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from noojee_desk.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import asyncio, json, sys
import qasync
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication, QLineEdit
from noojee_desk.app import build_desk, demo_factory, make_app
from noojee_desk.ui.main_window import MainWindow

app = make_app()

def shown(widget, window):
    # The part of ``widget`` on the screen: inside the window, inside every clipping parent.
    if not widget.isVisible():
        return 0.0
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    area = rect
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        area = area.intersected(QRect(parent.mapTo(window, QPoint(0, 0)), parent.size()))
        parent = parent.parentWidget()
    area = area.intersected(window.rect())
    full = rect.width() * rect.height()
    return (area.width() * area.height()) / full if full else 0.0

async def main():
    desk = build_desk(sys.argv[1], demo=demo_factory())
    window = MainWindow(desk)
    window.show()
    await window.start(demo=True)
    for _ in range(100):
        if window.form.target_ready:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    free = window.screen().availableGeometry()
    frame = window.frameGeometry()
    phone = window.form.findChild(QLineEdit, "field_FirstPhone")
    name = window.form.findChild(QLineEdit, "field_Name")
    report = {
        "screen": [free.width(), free.height()],
        "frame": [frame.x(), frame.y(), frame.width(), frame.height()],
        "min_width": window.minimumSizeHint().width(),
        "phone": shown(phone, window),
        "name": shown(name, window),
        "refresh": shown(window.pickers.refresh, window),
        "fields": shown(window.fields_button, window),
        "queue_lead": shown(window.form.queue_button, window),
        "export": shown(window.queue_view.findChild(object, "exportMenu"), window),
        "pause": shown(window.queue_view.pause, window),
        "allocation": shown(window.pickers.allocation, window),
        "options": shown(window.form.callback_on, window),
        "queue_rows": window.queue_view.table.viewport().height(),
        "queue_sideways": window.queue_view.table.horizontalScrollBar().maximum(),
        "details_width": window.queue_view.table.columnWidth(7),
    }
    print(json.dumps(report), flush=True)
    await window.shutdown()

with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
    runner.run(main())
"""


def look(tmp_path: Path, width: int, height: int, scale: float) -> dict:
    config = tmp_path / "screen.json"
    screen = {"name": "probe", "x": 0, "y": 0, "width": width, "height": height}
    config.write_text(json.dumps({"screens": [{**screen, "logicalDpi": 96, "dpr": 1}]}))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": f"offscreen:configfile={config}",
        "QT_SCALE_FACTOR": str(scale),
        "QT_API": "pyside6",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "home")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("{"))
    return json.loads(line)


@pytest.mark.parametrize(
    ("width", "height", "scale"),
    [(1024, 700, 1.0), (1366, 768, 1.25), (1366, 768, 1.5)],
    ids=["1024x700", "1366x768@125", "1366x768@150"],
)
def test_the_window_fits_and_shows_what_a_lead_needs(
    tmp_path: Path, width: int, height: int, scale: float
) -> None:
    seen = look(tmp_path, width, height, scale)
    free_w, free_h = seen["screen"]
    x, y, w, h = seen["frame"]
    assert w <= free_w, seen  # never wider than the screen: no sideways scrolling
    assert h <= free_h, seen
    assert x >= 0 and y >= 0 and x + w <= free_w and y + h <= free_h, seen  # noqa: PT018
    assert seen["min_width"] <= free_w, seen
    # The required fields without scrolling, and every button a lead needs, whole.
    for part in ("name", "phone", "queue_lead", "refresh", "fields", "allocation"):
        assert seen[part] == 1.0, (part, seen)
    for part in ("export", "pause", "options"):
        assert seen[part] == 1.0, (part, seen)
    assert seen["queue_rows"] > 40, seen  # the queue keeps a few rows in view
    # The queue's columns fit its width: no scrolling sideways to read a lead's details.
    assert seen["queue_sideways"] == 0, seen
    assert seen["details_width"] >= 140, seen


@pytest.mark.asyncio
async def test_a_saved_size_larger_than_the_screen_is_fitted(tmp_path: Path, qtbot: QtBot) -> None:
    home = tmp_path / "home"
    desk = make_desk(home)
    big = MainWindow(desk)
    free = big.screen().availableGeometry()
    big.setGeometry(QRect(free.x() + 300, free.y() + 200, free.width() + 900, free.height() + 700))
    saved = QSettings(str(desk.paths.window_state), QSettings.Format.IniFormat)
    saved.setValue("geometry", big.saveGeometry())
    saved.sync()
    await close_window(big)

    win = MainWindow(make_desk(home))
    try:
        win.show()
        frame = win.frameGeometry()
        assert frame.width() <= free.width()
        assert frame.height() <= free.height()
        assert free.contains(win.geometry().topLeft())
        assert win.geometry().right() <= free.right()
    finally:
        await close_window(win)


@pytest.mark.asyncio
async def test_the_splitter_gives_new_height_to_the_work_area_and_is_remembered(
    tmp_path: Path, qtbot: QtBot
) -> None:
    home = tmp_path / "home"
    win = MainWindow(make_desk(home))
    win.stack.setCurrentWidget(win.work)
    win.show()
    low = win.minimumSizeHint().height()  # the paste grid keeps its rows: the least height
    win.resize(900, low)
    await until(lambda: win.splitter.sizes()[0] > 0, what="laid out")
    work, queue = win.splitter.sizes()
    win.resize(900, low + 80)
    await until(lambda: sum(win.splitter.sizes()) > work + queue, what="taller")
    new_work, new_queue = win.splitter.sizes()
    assert new_work - work > new_queue - queue  # the work area grew more than the queue
    win.splitter.setSizes([150, 300])
    chosen = win.splitter.sizes()
    win.close()  # saves the window state with the splitter
    await close_window(win)

    again = MainWindow(make_desk(home))
    try:
        again.stack.setCurrentWidget(again.work)
        again.show()
        again.resize(900, low + 80)
        await until(lambda: again.splitter.sizes()[0] > 0, what="laid out")
        assert abs(again.splitter.sizes()[0] - chosen[0]) <= 2
    finally:
        await close_window(again)


@pytest.mark.asyncio
async def test_the_phone_field_is_visible_in_a_1024x700_window(
    window: MainWindow, qtbot: QtBot
) -> None:
    """In-process too: the window at 1024x700 shows First phone without scrolling."""
    window.resize(1024, 640)
    await window.start(demo=True)
    await until(lambda: window.form.target_ready, what="ready")
    phone = window.form.findChild(QLineEdit, "field_FirstPhone")
    assert phone is not None
    await until(lambda: not phone.visibleRegion().isEmpty(), what="phone laid out")
    region = phone.visibleRegion().boundingRect()
    assert region.height() == phone.height()  # whole, not cut by the scroll area
    inside: QWidget = window
    corner = phone.mapTo(inside, QPoint(0, phone.height()))
    assert inside.rect().contains(corner)


@pytest.mark.asyncio
async def test_the_queue_columns_narrow_to_fit_and_widen_again(
    window: MainWindow, qtbot: QtBot
) -> None:
    from noojee_desk.ui.queue.model import COL_BATCH, COL_DETAILS, COL_LEAD

    view = window.queue_view
    view.setParent(None)  # on its own, to set its width
    view.resize(1400, 300)
    view.show()
    table = view.table
    await until(lambda: table.viewport().width() > 1300, what="laid out wide")
    assert table.columnWidth(COL_LEAD) == 200
    view.resize(880, 300)
    await until(lambda: table.viewport().width() < 900, what="narrowed")
    assert table.horizontalScrollBar().maximum() == 0
    assert table.columnWidth(COL_LEAD) < 200
    assert table.columnWidth(COL_DETAILS) >= 80
    view.resize(1400, 300)
    await until(lambda: table.columnWidth(COL_LEAD) == 200, what="widened again")
    table.setColumnWidth(COL_BATCH, 260)  # as a person dragging its edge
    view.resize(1401, 300)
    await until(lambda: table.viewport().width() > 1300, what="laid out")
    assert table.columnWidth(COL_BATCH) == 260
    view.close()
    view.setParent(window)


@pytest.mark.asyncio
async def test_the_queues_controls_keep_apart_on_a_narrow_window(
    window: MainWindow, qtbot: QtBot
) -> None:
    """Long figures ("… waiting · … sending · … leads/s …") give way; the search box and the
    buttons beside it are never drawn over each other."""
    view = window.queue_view
    view.setParent(None)
    view.resize(880, 300)
    view.show()
    view.figures.setText("12,345 waiting · 8 sending · 12.5 leads/s · limit found: 8 at once")
    menu = view.findChild(QWidget, "selectedLeadsMenu")
    await until(lambda: view.search.isVisible() and menu.isVisible(), what="laid out")
    await until(lambda: view.search.width() > 0)
    search = view.search.geometry()
    assert search.right() < menu.geometry().left(), (search, menu.geometry())
    assert view.search.width() >= 200
    assert view.figures.toolTip().startswith("12,345 waiting")  # the whole text on hover
    view.close()
    view.setParent(window)
