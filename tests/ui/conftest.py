"""UI tests run on the qasync loop, so async slots really run; the QApplication comes first."""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import PySide6  # noqa: F401  (imported before qasync, which then uses this binding)
import pytest
import qasync
from PySide6.QtWidgets import QApplication

from noojee_desk.ui.batch_model import repair_signal_emit

# PySide6 6.12.0 on Python 3.11: every emit() from Python drops a reference to True, and the
# interpreter aborts after a few hundred of them; see repair_signal_emit.
repair_signal_emit()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async UI test runs on a qasync loop over the one QApplication."""
    return {"qasync": lambda: qasync.QEventLoop(QApplication.instance() or QApplication([]))}


@pytest.fixture(scope="session", autouse=True)
def _qapp_first(qapp: QApplication) -> QApplication:
    return qapp
