"""UI tests run on the qasync loop, so async slots really run; the QApplication comes first."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import PySide6  # noqa: F401  (imported before qasync, which then uses this binding)
import pytest
import pytest_asyncio
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from noojee_desk.ui.main_window import MainWindow


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async UI test runs on a qasync loop over the one QApplication."""
    return {"qasync": lambda: qasync.QEventLoop(QApplication.instance() or QApplication([]))}


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
