"""The window learns a template's fields from the PBX, asks a person to look at the guessed phone
fields, and deals with a batch the PBX refuses for a set-up mistake (the demo emulator)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from helpers.windows import close_window
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFormLayout, QLabel, QPushButton
from pytestqt.qtbot import QtBot

from noojee_desk.app import build_desk, demo_factory, demo_layouts
from noojee_desk.core.delivery.dispatcher import RetryTiming
from noojee_desk.core.delivery.records import LeadQuery, State, Target
from noojee_desk.core.desk import Desk, LearntLayout
from noojee_desk.core.leads.layouts import FieldLayout, Origin, layout_key
from noojee_desk.core.profiles.settings import Profile
from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.emulator import Emulator
from noojee_desk.sim.server import SimThread
from noojee_desk.ui.banner import BannerReason
from noojee_desk.ui.layout_dialog import COL_PHONE
from noojee_desk.ui.main_window import MainWindow

FAST = RetryTiming(
    soon=(0.05, 0.1), backoff_base=0.1, backoff_cap=0.5, backoff_floor=0.05, unknown_base=0.05,
    breaker_after=2, probe_base=0.1, probe_cap=0.5,
)  # fmt: skip

SUPER = Target(15, 70, 180)  # Super Health Check: snake-case keys, only ``phone`` dialled
REFERRALS = Target(18, 80, 200)  # Partner Referrals: only contact_a dialled
NUMBERS = [f"0491 572 {100 + i}" for i in range(8)]


async def until(predicate: Callable[[], object], limit: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


def make_desk(home: Path, *, demo: bool = True) -> Desk:
    desk = build_desk(str(home), demo=demo_factory() if demo else None)
    desk._timing = FAST
    return desk


def emulator_of(window: MainWindow) -> Emulator:
    return window.desk._demo.emulator  # type: ignore[union-attr]


def learnt_spy(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> list[LearntLayout]:
    """Every answer the window gets from Desk.learn_layout (the real one), in order."""
    answers: list[LearntLayout] = []
    real = window.desk.learn_layout

    async def learn(*args, **kwargs) -> LearntLayout:
        answer = await real(*args, **kwargs)
        answers.append(answer)
        return answer

    monkeypatch.setattr(window.desk, "learn_layout", learn)
    return answers


async def pick(window: MainWindow, target: Target) -> None:
    """Choose the target's template, campaign and allocation as a person would."""
    pickers = window.pickers
    for box, wanted in (
        (pickers.template, target.template_id),
        (pickers.campaign, target.campaign_id),
        (pickers.allocation, target.allocation_id),
    ):
        await until(lambda b=box, w=wanted: b.findData(w) >= 0, what=f"choice {wanted}")
        box.setCurrentIndex(box.findData(wanted))
        box.activated.emit(box.currentIndex())
    await until(lambda: pickers.target() == target, what="the target chosen")


def form_labels(window: MainWindow) -> list[str]:
    form = window.form.fields_form
    labels = []
    for row in range(form.rowCount()):
        item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
        widget = item.widget() if item is not None else None
        if isinstance(widget, QLabel):
            labels.append(widget.text())
    return labels


def button(window: MainWindow, banner_name: str, caption: str) -> QPushButton:
    banner = getattr(window, banner_name)
    for candidate in banner.buttons:
        if candidate.text() == caption:
            return candidate
    pytest.fail(f"no {caption!r} on {banner_name}: {[b.text() for b in banner.buttons]}")


async def paste_and_queue(window: MainWindow, rows: Sequence[Sequence[str]]) -> None:
    grid = window.grid
    mime = QMimeData()
    mime.setText("".join("\t".join(row) + "\r\n" for row in rows))
    QApplication.clipboard().setMimeData(mime)
    window.entry_tabs.setCurrentWidget(grid)
    await grid.paste_from_clipboard()
    await queue_grid(window)


async def queue_grid(window: MainWindow) -> None:
    grid = window.grid
    await until(lambda: not grid.checking and not grid.busy, what="the grid checked")
    grid.request_queue()
    # The summary opens once the queue says which rows were delivered before.
    await until(lambda: grid.summary_dialog is not None, what="the summary")
    grid.summary_dialog.findChild(QPushButton, "confirmQueue").click()
    await until(lambda: grid.model.total() == 0, what="the rows queued")


def test_demo_knows_the_plain_templates_but_learns_15_and_18() -> None:
    known = demo_layouts()
    assert {3, 7, 12} <= set(known)
    assert not {15, 18} & set(known)


@pytest.mark.asyncio
async def test_fields_learnt_from_the_pbx_are_checked_once_and_confirmed(
    window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = learnt_spy(window, monkeypatch)
    desk = window.desk
    await window.start(demo=True)
    await until(lambda: window.pickers.target() is not None, what="the demo's target")
    assert window.layout_hint.reason is None  # template 3: known in demo mode, nothing to say
    key = layout_key(desk.profile.server_key, 15)
    assert key not in desk.settings.layouts

    await pick(window, SUPER)
    await until(lambda: window.layout_hint.reason is BannerReason.FIELDS_NEED_LOOK)
    assert "Reading the template's fields" not in window.status_bar.currentMessage()
    text = window.layout_hint.text
    assert "taken for phone fields from their names: Phone. Check them before sending." in text
    assert "does not tell which fields" not in text  # the old wrong sentence is gone
    assert [b.text() for b in window.layout_hint.buttons] == ["Check fields…", "Looks right"]
    assert list(window.form._inputs)[:5] == [
        "address_1", "Best_Contact_Time", "email", "name_first", "name_last",
    ]  # fmt: skip
    labels = form_labels(window)
    assert "Name first" in labels
    assert "Phone ☎" in labels
    assert "name_first" not in labels
    combo_texts = [window.grid.header._label(n) for n in ("name_first", "phone", "njPriority")]
    assert combo_texts == ["Name first", "Phone ☎", "njPriority"]
    stored = FieldLayout.from_dict(desk.settings.layouts[key])
    assert (stored.origin, stored.confirmed, stored.phone_fields) == (Origin.PBX, False, ("phone",))
    assert desk.store.load().layouts[key]["confirmed"] is False  # kept in the settings file

    button(window, "layout_hint", "Looks right").click()
    assert window.layout_hint.reason is None
    assert not window.layout_hint.isVisible()
    assert FieldLayout.from_dict(desk.store.load().layouts[key]).confirmed

    # Refresh asks the PBX again: the same keys, already confirmed, need no second look.
    asked = len(answers)
    window.pickers.refresh.click()
    await until(lambda: len(answers) > asked, what="the fields read again")
    assert answers[-1].needs_look is False
    assert window.layout_hint.reason is None


@pytest.mark.asyncio
async def test_a_pasted_sheet_goes_out_under_the_pbx_keys(window: MainWindow) -> None:
    await window.start(demo=True)
    await pick(window, SUPER)
    await until(lambda: "name_first" in window.form._inputs, what="the learnt fields")
    rows = [
        ["First Name", "Last Name", "Mobile", "Suburb"],
        ["Ann", "Lee", NUMBERS[0], "Carlton"],
        ["Bob", "Ng", NUMBERS[1], "Kew"],
        ["Cleo", "Hart", NUMBERS[2], "Fitzroy"],
    ]
    await paste_and_queue(window, rows)
    assert window.grid.model.mapping == ["name_first", "name_last", "phone", "suburb"]
    emulator = emulator_of(window)
    await until(lambda: len(emulator.leads(70)) == 3, what="three leads delivered")
    await until(lambda: window.desk.outbox.counts("Demo")[State.DELIVERED] == 3)
    got = sorted(emulator.leads(70), key=lambda lead: lead["fields"]["name_first"])
    keys = {name for lead in got for name in lead["fields"]} - {"njExternalLeadId"}
    assert keys == {"name_first", "name_last", "phone", "suburb"}
    assert [lead["fields"]["name_first"] for lead in got] == ["Ann", "Bob", "Cleo"]
    assert got[0]["fields"]["phone"] == "0491572100"
    assert got[0]["fields"]["suburb"] == "Carlton"
    assert emulator.state()["insert_calls_by_template"] == {"15": 3}


@pytest.mark.asyncio
async def test_a_batch_refused_for_its_phone_field_is_taken_back_and_sent_once(
    window: MainWindow,
) -> None:
    desk = window.desk
    await window.start(demo=True)
    await pick(window, REFERRALS)
    await until(lambda: window.layout_hint.reason is BannerReason.FIELDS_NEED_LOOK)
    assert "Referrer Phone" in window.layout_hint.text  # the wrong guess, said plainly
    names = [f"Partner {chr(65 + i)}" for i in range(8)]
    rows = [["Name", "Mobile"], *([n, p] for n, p in zip(names, NUMBERS, strict=True))]
    await paste_and_queue(window, rows)
    batch_id = desk.outbox.batches("Demo", limit=1)[0].id

    emulator = emulator_of(window)
    await until(lambda: window.setup_banner.reason is BannerReason.SETUP_STOPPED, what="stop")
    refusals = emulator.state()["insert_calls_by_template"]["18"]
    assert refusals <= 5
    assert emulator.leads(80) == []
    text = window.setup_banner.text
    assert "no phone field it can dial (102)" in text
    assert "referrer_phone" in text  # where the number went
    assert "Open Fields…" in text  # the fix
    assert [b.text() for b in window.setup_banner.buttons] == [
        "Fix fields…", "Send anyway", "Take back to the grid",
    ]  # fmt: skip
    # A lead already on its way when the fifth refusal came gets its own answer; nothing else
    # of the batch goes out: the rest is held.
    counts = desk.outbox.counts
    await until(lambda: counts(batch_id=batch_id)[State.HELD] + counts(batch_id=batch_id)[
        State.REJECTED] == 8, what="the batch held")  # fmt: skip
    refused = counts(batch_id=batch_id)[State.REJECTED]
    assert refused < 8
    await asyncio.sleep(0.3)
    assert emulator.state()["insert_calls_by_template"]["18"] == refused  # nothing more sent
    assert counts(batch_id=batch_id)[State.HELD] == 8 - refused

    # Fix fields…: the dialog of the batch's template; contact_a is the dialled one.
    button(window, "setup_banner", "Fix fields…").click()
    dialog = window.layout_dialog
    assert dialog.isVisible()
    assert "Partner Referrals" in dialog.windowTitle()
    keys = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    dialog.table.item(keys.index("contact_a"), COL_PHONE).setCheckState(Qt.CheckState.Checked)
    dialog.table.item(keys.index("referrer_phone"), COL_PHONE).setCheckState(
        Qt.CheckState.Unchecked
    )
    buttons = dialog.findChild(QDialogButtonBox)
    buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert not dialog.isVisible()
    assert window.layout_hint.reason is None  # saving from the dialog confirms
    stored = desk.stored_layout(18)
    assert stored is not None
    assert (stored.phone_fields, stored.confirmed, stored.origin) == (
        ("contact_a",), True, Origin.PBX,
    )  # fmt: skip
    assert window.setup_banner.reason is BannerReason.SETUP_STOPPED  # the leads still wait

    button(window, "setup_banner", "Take back to the grid").click()
    assert window.setup_banner.reason is None
    grid = window.grid
    await until(lambda: grid.model.total() == 8 and not grid.busy, what="rows in the grid")
    assert window.entry_tabs.currentWidget() is grid
    assert grid.model.header == ["full_name", "referrer_phone", "njExternalLeadId"]
    # The originals, held and refused alike, are cancelled for good: Retry leaves them.
    assert counts(batch_id=batch_id)[State.CANCELLED] == 8
    originals = [lead.id for lead in desk.outbox.leads(LeadQuery(batch_id=batch_id))]
    assert desk.dispatcher is not None
    desk.dispatcher.retry(originals)
    await until(lambda: not desk.dispatcher._later, what="the retry written")  # type: ignore[union-attr]
    assert counts(batch_id=batch_id)[State.CANCELLED] == 8

    # Re-map the number to contact_a, as a person would in the mapping row, and queue again.
    combo = grid.header.combos[1]
    combo.setCurrentIndex(combo.findData("contact_a"))
    combo.activated.emit(combo.currentIndex())
    assert grid.model.mapping[:2] == ["full_name", "contact_a"]
    await queue_grid(window)
    await until(lambda: len(emulator.leads(80)) == 8, what="all eight delivered")
    await asyncio.sleep(0.3)
    delivered = emulator.leads(80)
    assert sorted(lead["fields"]["full_name"] for lead in delivered) == names
    assert all("referrer_phone" not in lead["fields"] for lead in delivered)
    assert sorted(lead["fields"]["contact_a"] for lead in delivered) == [
        n.replace(" ", "") for n in NUMBERS
    ]
    # Each lead kept its external id from the first batch: sent at most once, whatever happens.
    first = {lead.external_id for lead in desk.outbox.leads(LeadQuery(batch_id=batch_id))}
    assert {lead["external_id"] for lead in delivered} == first
    await until(lambda: desk.outbox.counts("Demo")[State.DELIVERED] == 8)
    # Retrying the originals now (the queue view's Retry on them) sends nobody a second time.
    calls = emulator.state()["insert_calls_by_template"]["18"]
    assert calls == refused + 8
    window.queue_view.retry_requested.emit(originals)
    await asyncio.sleep(0.5)
    assert counts(batch_id=batch_id)[State.CANCELLED] == 8
    assert emulator.state()["insert_calls_by_template"]["18"] == calls
    assert len(emulator.leads(80)) == 8
    assert desk.outbox.counts("Demo")[State.DELIVERED] == 8


@pytest.mark.asyncio
async def test_send_anyway_releases_the_held_leads(window: MainWindow) -> None:
    desk = window.desk
    await window.start(demo=True)
    await pick(window, REFERRALS)
    rows = [["Name", "Mobile"], *([f"P{i}", p] for i, p in enumerate(NUMBERS))]
    await paste_and_queue(window, rows)
    await until(lambda: window.setup_banner.reason is BannerReason.SETUP_STOPPED, what="stop")
    batch_id = desk.outbox.batches("Demo", limit=1)[0].id
    await until(lambda: desk.outbox.counts(batch_id=batch_id)[State.HELD] > 0)
    button(window, "setup_banner", "Send anyway").click()
    assert window.setup_banner.reason is None
    # Sent as they are: the PBX refuses each of them again (the fields were not fixed).
    await until(lambda: desk.outbox.counts(batch_id=batch_id)[State.REJECTED] == 8, what="sent")
    assert emulator_of(window).state()["insert_calls_by_template"]["18"] == 8
    assert window.setup_banner.reason is None  # not stopped a second time


@pytest.mark.asyncio
async def test_offline_the_fields_learnt_before_are_used(tmp_path: Path, qtbot: QtBot) -> None:
    home = tmp_path / "home"
    with SimThread(min_service=0.01, jitter=0.0) as sim:
        desk = make_desk(home, demo=False)
        desk.keys.set_for_session("Office", DEMO_API_KEY)
        desk.settings.upsert(
            Profile("Office", server_url=sim.url, template_id=15, campaign_id=70, allocation_id=180)
        )
        desk.settings.active_profile = "Office"
        desk.save_settings()
        win = MainWindow(desk)
        win.show()
        try:
            await win.start()
            await until(lambda: win.layout_hint.reason is BannerReason.FIELDS_NEED_LOOK)
            button(win, "layout_hint", "Looks right").click()
        finally:
            await close_window(win)

    # The PBX is gone: the next start shows the fields kept in the settings, and says why.
    desk = make_desk(home, demo=False)
    desk.keys.set_for_session("Office", DEMO_API_KEY)
    win = MainWindow(desk)
    win.show()
    try:
        await win.start()
        await until(lambda: win.layout_hint.reason is BannerReason.FIELDS_NOTE, what="the note")
        assert "could not be asked" in win.layout_hint.text
        assert "the fields saved earlier are used" in win.layout_hint.text
        assert "name_first" in win.form._inputs
        assert "Name first" in form_labels(win)
    finally:
        await close_window(win)
