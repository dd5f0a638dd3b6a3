"""The demo window on small and scaled screens and in dark and high-contrast palettes.

python3 scripts/screenshots_screens.py      # each case in its own Xvfb screen, to docs/screenshots

Each case runs in a process of its own (a screen size and QT_SCALE_FACTOR are fixed when Qt
starts): the window is built as the app builds it (fitted to the screen), a few sample leads are
queued, a lead is half keyed in, and the whole screen is grabbed.
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

#: name -> (screen width, height, QT_SCALE_FACTOR, palette)
CASES = {
    "screen-1024x700.png": (1024, 700, "1", ""),
    "screen-1366x768-125.png": (1366, 768, "1.25", ""),
    "screen-1366x768-150.png": (1366, 768, "1.5", ""),
    "palette-dark.png": (1280, 800, "1", "dark"),
    "palette-high-contrast.png": (1280, 800, "1", "high-contrast"),
}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        return shoot(sys.argv[2])
    if sys.platform.startswith("linux") and not shutil.which("xvfb-run"):
        print("Install xvfb (Debian: apt install xvfb) to render these screens.")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (width, height, scale, _palette) in CASES.items():
        env = {**os.environ, "QT_SCALE_FACTOR": scale, "QT_QPA_PLATFORM": "xcb"}
        screen = f"-screen 0 {width}x{height}x24 -dpi 96"
        cmd = ["xvfb-run", "-a", "-s", screen, sys.executable, __file__, "--case", name]
        code = subprocess.call(cmd, env=env)
        if code:
            return code
    print(f"screenshots written to {OUT}")
    return 0


def high_contrast_palette():
    """What a desktop's high-contrast theme hands the app: white on black, yellow accents."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, "#000000"),
        (roles.WindowText, "#ffffff"),
        (roles.Base, "#000000"),
        (roles.AlternateBase, "#101010"),
        (roles.Text, "#ffffff"),
        (roles.Button, "#000000"),
        (roles.ButtonText, "#ffffff"),
        (roles.Highlight, "#ffff00"),
        (roles.HighlightedText, "#000000"),
        (roles.PlaceholderText, "#c0c0c0"),
        (roles.ToolTipBase, "#000000"),
        (roles.ToolTipText, "#ffffff"),
        (roles.Light, "#ffffff"),
        (roles.Mid, "#ffffff"),
        (roles.Dark, "#ffffff"),
    ):
        palette.setColor(role, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, QColor("#00ff00"))
    return palette


def shoot(name: str) -> int:
    width, height, scale, palette = CASES[name]
    home = tempfile.mkdtemp(prefix="noojee-desk-screens-")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    import qasync

    from noojee_desk.app import build_desk, demo_factory, make_app

    app = make_app()
    if palette == "dark":
        from screenshots import use_dark_palette

        use_dark_palette(app)
    elif palette == "high-contrast":
        app.setStyle("Fusion")
        app.setPalette(high_contrast_palette())
    from noojee_desk.ui import theme

    theme.follow_system(app)  # as the app does when the system's palette changes

    async def run() -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        from noojee_desk.core.delivery.records import LeadInput, Target
        from noojee_desk.sim.data import SAMPLE_LEADS
        from noojee_desk.ui.main_window import MainWindow

        desk = build_desk(home, demo=demo_factory())
        window = MainWindow(desk)
        window.show()
        window.activateWindow()
        await window.start(demo=True)
        for _ in range(100):
            if window.form.target_ready:
                break
            await asyncio.sleep(0.05)
        validator = desk.validator(desk.layout_for(3))
        checks = [validator.validate_one(row) for row in SAMPLE_LEADS[3]]
        leads = [LeadInput(c.fields, c.phones, i + 1) for i, c in enumerate(checks) if c.ok]
        await window.enqueue(Target(3, 42, 101), leads, False, "Web enquiries.xlsx")
        for _ in range(60):
            await asyncio.sleep(0.1)
            if not desk.outbox.counts("Demo").open:
                break
        focus = window.focusWidget()
        if focus is not None:
            QTest.keyClicks(focus, "Chris Taylor")
            QTest.keyClick(focus, Qt.Key.Key_Tab)
            QTest.keyClicks(window.focusWidget(), "0491 570")
        if palette and desk.dispatcher is not None:
            desk.dispatcher.pause("Paused by you")  # the status bar's paused state
        await asyncio.sleep(1.0)
        screen = app.primaryScreen()
        path = OUT / name
        screen.grabWindow(0, 0, 0, screen.geometry().width(), screen.geometry().height()).save(
            str(path)
        )
        print(f"  {path.relative_to(ROOT)}  ({width}x{height}, scale {scale} {palette})".rstrip())
        await window.shutdown()

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(run())
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
