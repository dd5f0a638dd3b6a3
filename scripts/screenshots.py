"""Render the main screens in a real window (Xvfb when there is no display) to docs/screenshots.

python3 scripts/screenshots.py            # needs xvfb-run when no display is available
python3 scripts/screenshots.py --fields   # only the fields read from the PBX and a held batch
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

import display

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    relaunched = display.run_on_a_display(__file__)
    if relaunched is not None:
        return relaunched
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

        from noojee_desk.core.delivery.records import LeadInput, Target
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
        if "--fields" in sys.argv:
            await window.open_demo()
            await settle(1.0)
            await fields_screens(window, settle)
            await window.shutdown()
            return
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
        await fields_screens(window, settle)
        await window.shutdown()

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(shoot())
    shutil.rmtree(home, ignore_errors=True)
    print(f"screenshots written to {OUT}")
    return 0


async def fields_screens(window, settle) -> None:
    """Template 15's fields read from the built-in PBX, its phone field to check; then a batch
    for template 18 with the number in the field the dialler does not call, held after five
    refusals (102)."""
    from noojee_desk.core.delivery.records import Target
    from noojee_desk.core.leads.table import Table
    from noojee_desk.ui.banner import BannerReason

    async def pick(target: Target) -> None:
        pickers = window.pickers
        for box, wanted in (
            (pickers.template, target.template_id),
            (pickers.campaign, target.campaign_id),
            (pickers.allocation, target.allocation_id),
        ):
            for _ in range(100):
                if box.findData(wanted) >= 0:
                    break
                await settle(0.05)
            box.setCurrentIndex(box.findData(wanted))
            box.activated.emit(box.currentIndex())
        await settle(0.5)

    async def wait_for(predicate, what: str) -> None:
        for _ in range(300):
            if predicate():
                return
            await settle(0.05)
        raise RuntimeError(f"screenshots: timed out waiting for {what}")

    window.entry_tabs.setCurrentWidget(window.form)
    window.resize(1280, 880)
    window.splitter.setSizes([620, 160])  # the form tall enough for the template's own fields
    await pick(Target(15, 70, 180))
    await wait_for(lambda: window.layout_hint.reason is BannerReason.FIELDS_NEED_LOOK, "15")
    form = window.form
    form._inputs["name_first"].setText("Sam")
    form._inputs["name_last"].setText("Okafor")
    form._inputs["phone"].setText("0491 572 549")
    form._inputs["suburb"].setText("Brunswick")
    await settle()
    save(window, "fields-from-pbx.png")

    await pick(Target(18, 80, 200))
    await wait_for(lambda: window.layout_hint.reason is BannerReason.FIELDS_NEED_LOOK, "18")
    names = ["Ruth Adams", "Tom Baker", "Ivy Chen", "Omar Diaz", "Kate Evans", "Leo Fox"]
    names += ["Maya Gill", "Ned Hall"]
    rows = [["Name", "Mobile"]] + [[n, f"0491 572 {110 + i}"] for i, n in enumerate(names)]
    grid = window.grid
    window.entry_tabs.setCurrentWidget(grid)
    window.splitter.setSizes([330, 450])
    await grid.load_table(Table(rows), "Referrals March.xlsx")
    await wait_for(lambda: not grid.checking and not grid.busy, "the grid checked")
    grid.request_queue()
    # The summary opens once the queue says which rows were delivered before.
    await wait_for(lambda: grid.summary_dialog is not None, "the queue summary")
    box = grid.summary_dialog
    box.findChild(type(grid.footer.queue_button), "confirmQueue").click()
    await wait_for(lambda: window.setup_banner.reason is BannerReason.SETUP_STOPPED, "the stop")
    await settle(1.0)
    save(window, "setup-stopped.png")


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
