"""A first day against a PBX shaped like a live one, in a real window (Xvfb when no display).

python3 scripts/try_real_pbx.py     # with the .venv's python; writes docs/screenshots/real-pbx*.png

`noojee-desk sim` runs as its own process on 127.0.0.1 (over HTTP, as a PBX would be reached).
A new desk connects to it (the key kept for the session only), picks the snake-case template 15,
shows the fields the PBX describes without any typed by hand, takes a paste headed
"First Name, Last Name, Mobile, Suburb", queues it, and checks on the PBX that every lead landed
with the template's own keys. Prints what it saw; exits 1 when a lead is missing or mis-keyed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import display
import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
ROWS = [
    ["First Name", "Last Name", "Mobile", "Suburb"],
    ["Ann", "Lee", "0491 572 110", "Carlton"],
    ["Bob", "Ng", "0491572111", "Kew"],
    ["Cleo", "Hart", "+61 491 572 112", "Fitzroy"],
]


def main() -> int:
    relaunched = display.run_on_a_display(__file__)
    if relaunched is not None:
        return relaunched
    scratch = Path(tempfile.mkdtemp(prefix="noojee-desk-real-"))
    os.environ["NOOJEE_DESK_HOME"] = str(scratch / "home")
    os.environ["XDG_CONFIG_DIRS"] = str(scratch / "xdg")
    sys.path.insert(0, str(ROOT))
    sim = subprocess.Popen(
        [sys.executable, "-m", "noojee_desk", "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert sim.stdout is not None
    url = sim.stdout.readline().strip().removeprefix("listening on ")
    print(f"noojee-desk sim at {url}")
    try:
        return asyncio_main(url)
    finally:
        sim.terminate()
        sim.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)


def asyncio_main(url: str) -> int:
    import qasync
    from PySide6.QtCore import QMimeData
    from PySide6.QtWidgets import QApplication, QPushButton

    from noojee_desk.app import build_desk, make_app
    from noojee_desk.core.profiles.settings import Profile
    from noojee_desk.ui.main_window import MainWindow

    app = make_app()
    OUT.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    async def settle(seconds: float = 0.6) -> None:
        await asyncio.sleep(seconds)  # the loop paints meanwhile (no processEvents here)

    async def until(condition, what: str, limit: float = 30.0) -> None:  # type: ignore[no-untyped-def]
        for _ in range(int(limit / 0.1)):
            if condition():
                return
            await settle(0.1)
        raise SystemExit(f"gave up waiting for {what}")

    def shoot(window: MainWindow, name: str) -> None:
        shot = app.primaryScreen().grabWindow(0, 0, 0, window.width(), window.height())
        shot.save(str(OUT / name))
        print(f"  {OUT / name}")

    async def run() -> None:
        desk = build_desk(os.environ["NOOJEE_DESK_HOME"], demo=None)
        office = Profile(
            "Office", server_url=url, template_id=15, campaign_id=70, allocation_id=180
        )
        await desk.save_profile(office, "demo-key", session_only=True)
        window = MainWindow(desk)
        window.resize(1280, 880)
        window.move(0, 0)
        window.show()
        await window.start()
        await until(lambda: window.pickers.target() is not None, "the pickers")
        await until(lambda: "phone" in window.desk.layout_for(15).names, "the PBX's fields")
        await settle(1.0)
        labels = [spec.title for spec in window.desk.layout_for(15).fields]
        print(f"fields shown: {', '.join(labels)}")
        mime = QMimeData()
        mime.setText("".join("\t".join(row) + "\r\n" for row in ROWS))
        QApplication.clipboard().setMimeData(mime)
        window.entry_tabs.setCurrentWidget(window.grid)
        await window.grid.paste_from_clipboard()
        await until(lambda: not window.grid.checking and not window.grid.busy, "the checks")
        print(f"mapping: {window.grid.model.mapping}")
        await settle()
        shoot(window, "real-pbx-paste.png")
        window.grid.request_queue()
        dialog = window.grid.summary_dialog
        if dialog is None:
            failures.append("nothing to queue")
        else:
            dialog.findChild(QPushButton, "confirmQueue").click()

        def landed() -> list[dict[str, object]]:
            state = httpx.get(f"{url}/__sim/state", timeout=10).json()
            return [lead for lead in state["leads"] if lead["template_id"] == 15]

        await until(lambda: len(landed()) >= 3, "three leads on the PBX")
        await settle(1.0)
        shoot(window, "real-pbx-delivered.png")
        for lead in landed():
            fields = dict(lead["fields"])  # type: ignore[call-overload]
            fields.pop("njExternalLeadId", None)
            print(f"on the PBX: {fields}")
            if set(fields) != {"name_first", "name_last", "phone", "suburb"}:
                failures.append(f"keys {sorted(fields)}")
        await window.shutdown()

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(run())
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
