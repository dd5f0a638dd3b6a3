"""UI tests run on the qasync loop, so async slots really run; the QApplication comes first."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import PySide6  # noqa: F401  (imported before qasync, which then uses this binding)
import pytest
import pytest_asyncio
import pytestqt.plugin
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from noojee_desk.ui.main_window import MainWindow

#: The qasync loop of the test that runs now (the last one made).
_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None


def _new_loop() -> asyncio.AbstractEventLoop:
    global _loop
    loop = qasync.QEventLoop(QApplication.instance() or QApplication([]))
    _loop = weakref.ref(loop)
    return loop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async UI test runs on a qasync loop over the one QApplication."""
    return {"qasync": _new_loop}


_process_events = pytestqt.plugin._process_events


def _process_events_in_the_loop() -> None:
    """pytest-qt processes Qt's events after each test's set-up, call and teardown, while the
    test's asyncio loop is stopped between them. On a qasync loop those events include asyncio
    callbacks (a timer's, a thread's answer), so a task resumed there would run outside any
    running loop: its next ``asyncio.wait`` or ``sleep`` raises "no running event loop" (a
    dispatcher started in a fixture died of it, leaving its leads queued). The app never
    processes events outside its loop: here too they run with the test's loop as the running
    one."""
    loop = _loop() if _loop is not None else None
    if loop is None or loop.is_closed() or loop.is_running():
        _process_events()
        return
    asyncio._set_running_loop(loop)
    try:
        _process_events()
    finally:
        asyncio._set_running_loop(None)


pytestqt.plugin._process_events = _process_events_in_the_loop


@pytest.fixture(scope="session", autouse=True)
def _qapp_first(qapp: QApplication) -> Iterator[QApplication]:
    # Closing a test's last window must not quit the application under the next test's loop.
    qapp.setQuitOnLastWindowClosed(False)
    yield qapp
    # The clipboard owns the QMimeData the paste tests put there; left for Qt's exit handlers,
    # it would be deleted after Python has gone, which crashes the interpreter at exit.
    qapp.clipboard().clear()
    qapp.processEvents()


@pytest.fixture(autouse=True)
def _collect_on_gui_thread() -> Iterator[None]:
    """Collect garbage here, on the GUI thread, around every test.

    Otherwise a collection may start in a worker thread (the emulator's, an executor's) and
    destroy Qt objects of earlier tests there ("Timers cannot be stopped from another thread").
    """
    gc.collect()
    yield
    gc.collect()


@pytest_asyncio.fixture
async def window(tmp_path: Path, qtbot: QtBot) -> AsyncIterator[MainWindow]:
    """The main window on a fresh demo-capable desk, closed after its services stop."""
    from helpers.desks import make_desk
    from helpers.windows import close_window

    win = MainWindow(make_desk(tmp_path / "home"))
    win.show()
    yield win
    await close_window(win)
