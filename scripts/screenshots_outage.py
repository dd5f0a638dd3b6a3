"""The window while the PBX is down and the moment it is back; a second launch on the same
data folder (two real processes). Real windows under Xvfb, to docs/screenshots.

python3 scripts/screenshots_outage.py     # needs xvfb-run when no display is available

Writes pbx-down.png, pbx-back.png and second-launch.png.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import display

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    relaunched = display.run_on_a_display(__file__)
    if relaunched is not None:
        return relaunched
    sys.path.insert(0, str(ROOT))
    OUT.mkdir(parents=True, exist_ok=True)
    home = tempfile.mkdtemp(prefix="noojee-desk-shots-")
    try:
        import qasync

        from noojee_desk.app import make_app

        app = make_app()
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            runner.run(outage(home))
            runner.run(second_launch(str(Path(home) / "second")))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"screenshots written to {OUT}")
    return 0


async def settle(seconds: float = 0.6) -> None:
    await asyncio.sleep(seconds)  # the loop paints meanwhile; never processEvents() in here


async def wait_for(predicate, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: timed out waiting for {what}")
        await settle(0.05)


async def outage(home: str) -> None:
    """Leads queued, the built-in PBX goes down (set_down), more leads wait; then it is back."""
    from noojee_desk.app import DemoPbx, build_desk, demo_factory
    from noojee_desk.core.delivery.records import LeadInput, Target
    from noojee_desk.sim.data import SAMPLE_LEADS
    from noojee_desk.ui.main_window import MainWindow

    desk = build_desk(home, demo=demo_factory())
    pbx = desk.demo
    assert isinstance(pbx, DemoPbx)
    window = MainWindow(desk)
    window.resize(1280, 820)
    window.show()
    await window.start(demo=True)
    await wait_for(lambda: window.pickers.target() is not None, "the demo pickers")
    target = Target(3, 42, 101)
    validator = desk.validator(desk.layout_for(3))
    checks = [validator.validate_one(row) for row in SAMPLE_LEADS[3]]
    leads = [LeadInput(c.fields, c.phones, i + 1) for i, c in enumerate(checks) if c.ok]
    first, rest = leads[:3], leads[3:]
    await window.enqueue(target, first, False, "Morning list.xlsx")
    await wait_for(lambda: not desk.outbox.counts("Demo").open, "the first leads delivered")
    await settle()
    pbx.emulator.set_down(True)
    await window.enqueue(target, rest, False, "Afternoon list.xlsx")
    bar = window.status_bar
    await wait_for(lambda: "Offline" in bar.connection_text, "the window to see the PBX down")
    await settle(1.5)
    print(f"  down: {bar.connection_text!r} | {bar.counts_text!r}")
    save(window, "pbx-down.png")
    pbx.emulator.set_down(False)
    await wait_for(lambda: "Connected" in bar.connection_text, "the window to see the PBX back")
    await wait_for(lambda: not desk.outbox.counts("Demo").open, "the waiting leads delivered")
    await settle(0.8)
    print(f"  back: {bar.connection_text!r} | {bar.counts_text!r}")
    save(window, "pbx-back.png")
    await window.shutdown()
    window.close()


async def second_launch(home: str) -> None:
    """The app's own start (claim_folder, run_window) in this process; then a second process
    launched on the same data folder, as a person double-clicking the icon again. Another
    window covers the first one meanwhile, so the screen shows whether it came forward."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QLabel

    from noojee_desk.app import claim_folder, open_desk_or_explain, run_window

    instance = claim_folder(home)
    assert instance is not None, "the data folder is free"
    desk = open_desk_or_explain(home)
    assert desk is not None
    raised: list[float] = []
    running = asyncio.ensure_future(run_window(desk, start_demo=True, instance=instance))
    await wait_for(lambda: instance.on_raise is not None, "the window to listen")
    bring_forward = instance.on_raise

    def on_raise() -> None:
        bring_forward()
        raised.append(time.monotonic())

    instance.on_raise = on_raise
    window = next(w for w in QGuiApplication.topLevelWindows() if w.isVisible())
    await settle(2.0)
    cover = QLabel("Another program's window, in front of Noojee Desk")
    cover.setAlignment(Qt.AlignmentFlag.AlignCenter)
    cover.setStyleSheet("background: #5b6b7b; color: white; font-size: 20px;")
    cover.setGeometry(window.geometry().adjusted(-20, -20, 20, 20))
    cover.show()
    cover.raise_()
    await settle(1.0)
    save_screen("second-launch-before.png", Path(tempfile.gettempdir()))
    second = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "noojee_desk", "--data-dir", home,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    said, _ = await second.communicate()
    print(f"  second launch: exit {second.returncode}: {said.decode().strip()!r}")
    await wait_for(lambda: bool(raised), "the first window asked to come forward", limit=10)
    await settle(1.0)
    save_screen("second-launch.png")
    cover.close()
    from PySide6.QtWidgets import QApplication

    from noojee_desk.ui.main_window import MainWindow

    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow):
            widget.close()  # ends run_window, which shuts the window's services down
    await asyncio.wait_for(running, 30)
    instance.release()


def save(widget, name: str) -> None:
    path = OUT / name
    widget.grab().save(str(path))
    print(f"  {path.relative_to(ROOT)}")


def save_screen(name: str, folder: Path = OUT) -> None:
    """The whole screen as X shows it (which window is in front)."""
    from PySide6.QtGui import QGuiApplication

    path = folder / name
    QGuiApplication.primaryScreen().grabWindow(0).save(str(path))
    print(f"  {path}")


if __name__ == "__main__":
    sys.exit(main())
