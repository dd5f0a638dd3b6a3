"""Render the main screens in a real window (Xvfb when there is no display) to docs/screenshots.

python3 scripts/screenshots.py            # needs xvfb-run when no display is available
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        if not shutil.which("xvfb-run"):
            print("No display: install xvfb (Debian: apt install xvfb) or run on a desktop.")
            return 2
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24 -dpi 96", sys.executable, __file__]
        cmd += sys.argv[1:]
        return subprocess.call(cmd)
    os.environ["QT_QPA_PLATFORM"] = os.environ.get("QT_QPA_PLATFORM", "xcb")
    home = tempfile.mkdtemp(prefix="noojee-desk-shots-")
    os.environ["NOOJEE_DESK_HOME"] = home
    sys.path.insert(0, str(ROOT))
    import qasync

    from noojee_desk.app import build_desk, demo_factory, make_app

    app = make_app()
    OUT.mkdir(parents=True, exist_ok=True)
    dark = "--dark" in sys.argv
    if dark:
        use_dark_palette(app)

    async def shoot() -> None:
        from PySide6.QtWidgets import QLineEdit

        from noojee_desk.core.delivery.outbox import LeadInput, Target
        from noojee_desk.sim.data import SAMPLE_LEADS
        from noojee_desk.ui.main_window import MainWindow

        async def settle(seconds: float = 0.6) -> None:
            await asyncio.sleep(seconds)  # the loop paints and handles events meanwhile
            # No processEvents() here: run inside a loop callback, it lets qasync's timer
            # fire again re-entrantly and lose a task started meanwhile (it never runs).

        desk = build_desk(home, demo=demo_factory())
        window = MainWindow(desk)
        window.resize(1280, 820)
        window.show()
        await window.start()
        await settle()
        if not dark:
            save(window, "welcome.png")

        await window.open_demo()
        await settle(1.0)
        target = Target(3, 42, 101)
        validator = desk.validator(desk.layout_for(3))
        rows = [*SAMPLE_LEADS[3], SAMPLE_LEADS[3][0]]  # the last one: a duplicate (105)
        checks = [validator.validate_one(row) for row in rows]
        leads = [LeadInput(c.fields, c.phones, i + 1) for i, c in enumerate(checks) if c.ok]
        await window.enqueue(target, leads, False, "Web enquiries.xlsx")
        form = window.form
        form.findChild(QLineEdit, "field_Name").setText("Chris Taylor")
        form.findChild(QLineEdit, "field_City").setText("Fitzroy")
        form.findChild(QLineEdit, "field_FirstPhone").setText("0491 570 159")
        for _ in range(60):
            await settle(0.1)
            if window.queue_model.rowCount() and not desk.outbox.counts("Demo").open:
                break
        await settle(0.5)
        window.queue_view.table.selectRow(4)
        save(window, "main-window-dark.png" if dark else "main-window.png")
        if dark:
            await window.shutdown()
            return

        window.edit_connection()
        window.new_connection()
        dialog = window.connect_dialog
        dialog.name.setText("Production")
        dialog.url.setText("https://pbx.example.com")
        dialog.key.setText("not-a-real-key")
        await settle()
        save(dialog, "connect.png")
        dialog.reject()
        await window.shutdown()

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(shoot())
    shutil.rmtree(home, ignore_errors=True)
    print(f"screenshots written to {OUT}")
    return 0


def use_dark_palette(app) -> None:
    """What a desktop in dark mode hands the app: checks that our colours stay readable."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, "#2b2b2b"),
        (roles.WindowText, "#e6e6e6"),
        (roles.Base, "#1e1e1e"),
        (roles.AlternateBase, "#262626"),
        (roles.Text, "#e6e6e6"),
        (roles.Button, "#353535"),
        (roles.ButtonText, "#e6e6e6"),
        (roles.Highlight, "#3d6fb4"),
        (roles.HighlightedText, "#ffffff"),
        (roles.PlaceholderText, "#8c8c8c"),
        (roles.ToolTipBase, "#353535"),
        (roles.ToolTipText, "#e6e6e6"),
    ):
        palette.setColor(role, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, QColor("#777777"))
    app.setPalette(palette)


def save(widget, name: str) -> None:
    path = OUT / name
    widget.grab().save(str(path))
    print(f"  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
