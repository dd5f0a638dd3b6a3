"""Opening and closing the main window in tests: its services stop before it closes."""

from __future__ import annotations

from noojee_desk.ui.main_window import MainWindow


async def close_window(win: MainWindow) -> None:
    """Stop the window's services, then close it (pytest-qt would close it before they stop)."""
    await win.shutdown()
    win.close()
    win.deleteLater()
