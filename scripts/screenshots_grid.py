"""Screenshots of the batch grid in a real window (Xvfb when there is no display).

python3 scripts/screenshots_grid.py      # docs/screenshots/grid-problems.png and grid-mapping.png
python3 scripts/screenshots_grid.py --dark --out /tmp/shots      # the same on a dark palette
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

import display

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"

HEADER = ["Customer", "Street", "Suburb", "State", "Postcode", "Mobile", "Home phone", "Priority"]
HEADER.append("Notes")
ROWS = [
    ["Jane Smith", "Suite 8/10 Hoddle St", "Abbotsford", "VIC", "3067", "0412 345 678", "", "", ""],
    ["Wei Chen", "22 Chapel St", "Windsor", "VIC", "3181", "412345679", "(03) 9521 4400", "", ""],
    ["Priya Singh", "5 George St", "Parramatta", "NSW", "2150", "4.12E+08", "", "5", "Web form"],
    ["Liam Walker", "19 King St", "Newtown", "NSW", "2042", "", "", "", "Call after 5pm"],
    ["Olivia Brown", "7 Queen St", "Fremantle", "WA", "6160", "0413 555 019", "", "150", ""],
    ["Noah Kelly", "31 Albert Rd", "Glenelg", "SA", "5045", "0412 345 678", "", "", "Repeat"],
    ["Mia Nguyen", "2/14 Sydney Rd", "Brunswick", "VIC", "3056", "0414 222 333", "", "", ""],
    ["Jack Lee", "88 Bourke St", "Melbourne", "VIC", "3000", "0415 777 888", "<NO CHANGE>"],
    ["Ava Martin", "3 Collins St", "Melbourne", "VIC", "3000", "+61 416 100 200", "", "", ""],
    ["Ethan Jones", "120 Smith St", "Fitzroy", "VIC", "3065", "0417 300 400", "", "20", ""],
    ["Zoe Taylor", "4 Victoria Pde", "Collingwood", "VIC", "3066", "0418 500 600 / 03 9417 1234"],
    ["Lucas Wilson", "9 Hoddle St", "Richmond", "VIC", "3121", "0419 700 800", "", "", ""],
    ["Chloe Williams", "61 Sandy Bay Rd", "Sandy Bay", "TAS", "7005", "0420 900 100", "", "", ""],
    ["Ahmed Khan", "15 Ann St", "Fortitude Valley", "QLD", "4006", "07 3852 1000", "", "", ""],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dark", action="store_true", help="a dark palette, as in dark mode")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = parser.parse_args()
    relaunched = display.run_on_a_display(__file__)
    if relaunched is not None:
        return relaunched
    home = tempfile.mkdtemp(prefix="noojee-desk-grid-shots-")
    os.environ["NOOJEE_DESK_HOME"] = home
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    import PySide6  # noqa: F401  (before qasync, which then uses this binding)
    import qasync
    from PySide6.QtCore import QMimeData, QPoint
    from PySide6.QtWidgets import QApplication

    from noojee_desk.app import build_desk, demo_factory, make_app

    app = make_app()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "-dark" if args.dark else ""
    if args.dark:
        from screenshots import use_dark_palette

        use_dark_palette(app)

    async def settle(seconds: float = 0.4) -> None:
        await asyncio.sleep(seconds)  # the loop paints and handles events meanwhile
        # No processEvents() here: run inside a loop callback, it lets qasync's timer
        # fire again re-entrantly and lose a task started meanwhile (it never runs).

    async def shoot() -> None:
        from noojee_desk.ui.main_window import MainWindow

        desk = build_desk(home, demo=demo_factory())
        window = MainWindow(desk)
        window.resize(1400, 900)
        window.show()
        await window.start(demo=True)
        for _ in range(100):
            if window.pickers.target() is not None:
                break
            await settle(0.05)
        grid = window.grid
        window.splitter.setSizes([700, 120])
        mime = QMimeData()
        mime.setText("".join("\t".join(row) + "\r\n" for row in [HEADER, *ROWS]))
        QApplication.clipboard().setMimeData(mime)
        window.act_paste.trigger()  # File ▸ Paste leads
        for _ in range(400):  # the first check also loads the phone number tables
            await settle(0.05)
            if grid.model.total() and not grid.checking and not grid.busy:
                break
        await settle()
        grid.splitter.setSizes([1040, 340])
        for column, width in enumerate((112, 150, 108, 80, 88, 128, 128, 96, 104)):
            grid.view.setColumnWidth(column, width)
        await settle()
        for _ in range(400):  # a check of the whole grid may still be due
            if not grid.checking:
                break
            await settle(0.05)
        # A problem chosen in the list: its whole text shows below the list.
        grid.panel.list.setCurrentIndex(grid.problems.index(1))
        await settle()
        save(grid, args.out / f"grid-problems{suffix}.png")

        # The mapping row: the "Home phone" column's drop-down open.
        combo = grid.header.combos[6]
        combo.showPopup()
        await settle(0.6)
        top_left = grid.mapToGlobal(QPoint(0, 0))
        popup = combo.view().window().geometry()
        top = min(top_left.y(), popup.top() - 6)
        bottom = max(popup.bottom() + 12, grid.view.mapToGlobal(QPoint(0, 0)).y() + 290)
        width = grid.view.width() + 8
        shot = app.primaryScreen().grabWindow(0, top_left.x(), top, width, bottom - top)
        path = args.out / f"grid-mapping{suffix}.png"
        shot.save(str(path))
        print(f"  {path}")
        combo.hidePopup()
        QApplication.clipboard().clear()  # Qt would free our QMimeData after Python is gone
        await window.shutdown()
        window.close()

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(shoot())
    shutil.rmtree(home, ignore_errors=True)
    return 0


def save(widget, path: Path) -> None:
    widget.grab().save(str(path))
    print(f"  {path}")


if __name__ == "__main__":
    sys.exit(main())
