"""The queue file in the window: a full disk, a lock another process holds, a damaged file at
start and a failing read each become a clear message with what to do, never a traceback, and
never a lost lead (a form lead goes back into the form, a grid batch stays in the grid)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from helpers.desks import make_core_desk, make_desk
from helpers.waits import until
from helpers.windows import close_window
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from noojee_desk.app import open_desk_or_explain
from noojee_desk.core import paths
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import LeadInput, LeadQuery, Target
from noojee_desk.sim.emulator import Emulator
from noojee_desk.ui.banner import BannerReason
from noojee_desk.ui.main_window import MainWindow
from noojee_desk.ui.queue.model import COL_STATUS

FULL = "database or disk is full"


def field(window: MainWindow, name: str) -> QLineEdit:
    box = window.form.findChild(QLineEdit, f"field_{name}")
    assert box is not None
    return box


def queue_lead(qtbot: QtBot, window: MainWindow, name: str = "", phone: str = "") -> None:
    if name:
        qtbot.keyClicks(field(window, "Name"), name)
    if phone:
        qtbot.keyClicks(field(window, "FirstPhone"), phone)
    qtbot.keyClick(
        field(window, "FirstPhone"), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
    )


def states(window: MainWindow) -> list[str]:
    model = window.queue_model
    return [model.index(r, COL_STATUS).data() for r in range(model.rowCount())]


@pytest_asyncio.fixture
async def demo(tmp_path: Path, qtbot: QtBot) -> AsyncIterator[MainWindow]:
    win = MainWindow(make_desk(tmp_path / "home"))
    win.show()
    await win.start(demo=True)
    await until(lambda: win.pickers.target() is not None, what="demo pickers")
    yield win
    await close_window(win)


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_args: object, **_kwargs: object) -> object:
        raise sqlite3.OperationalError(FULL)

    monkeypatch.setattr(Outbox, "queue_once", full)


@pytest.mark.asyncio
async def test_a_full_disk_keeps_the_form_lead_in_the_form_with_what_to_do(
    demo: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[str] = []
    demo.tasks.on_error = errors.append
    with monkeypatch.context() as patch:
        disk_full(patch)
        queue_lead(qtbot, demo, "Ann Lee", "03 7010 1234")
        await until(lambda: "not queued" in demo.form.summary.text(), what="the form's message")
    assert field(demo, "Name").text() == "Ann Lee"  # the lead is back in the form
    assert field(demo, "FirstPhone").text().replace(" ", "") == "0370101234"
    summary = demo.form.summary.text()
    assert "disk holding the queue file" in summary
    assert "is full" in summary
    assert "Free some disk space" in summary
    banner = demo.problem_banner
    assert banner.reason is BannerReason.QUEUE_FILE
    assert "is full" in banner.text
    assert "Free some disk space" in banner.text
    assert demo.queue_model.rowCount() == 0
    assert errors == []  # no "Something went wrong" traceback text
    # Space freed: Ctrl+Enter queues the same lead, and the banner goes.
    queue_lead(qtbot, demo)
    await until(lambda: states(demo) == ["Delivered"], what="the lead delivered")
    assert banner.reason is not BannerReason.QUEUE_FILE
    assert field(demo, "Name").text() == ""


@pytest.mark.asyncio
async def test_a_full_disk_keeps_the_grid_batch_in_the_grid(
    demo: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = demo.grid
    mime_rows = [["Name", "FirstPhone"]] + [[f"Lead {n}", f"041200{n:04d}"] for n in range(5)]
    from PySide6.QtCore import QMimeData

    mime = QMimeData()
    mime.setText("".join("\t".join(row) + "\r\n" for row in mime_rows))
    QGuiApplication.clipboard().setMimeData(mime)
    demo.entry_tabs.setCurrentWidget(grid)
    await grid.paste_from_clipboard()
    await until(lambda: not grid.checking and not grid.busy, what="the grid checked")
    assert grid.model.total() == 5
    with monkeypatch.context() as patch:
        disk_full(patch)
        grid.request_queue()
        await until(lambda: grid.summary_dialog is not None, what="the summary")
        grid.summary_dialog.findChild(QPushButton, "confirmQueue").click()
        await until(lambda: "not queued" in grid.footer.status.text(), what="the grid's message")
    assert "is full" in grid.footer.status.text()
    assert "Free some disk space" in grid.footer.status.text()
    assert grid.model.total() == 5
    assert not any(r.queueing for r in grid.model.all_rows())
    assert demo.problem_banner.reason is BannerReason.QUEUE_FILE
    assert demo.desk.outbox.leads(LeadQuery()) == []
    QGuiApplication.clipboard().clear()


HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def hold_the_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process, holding the queue file's write lock for ``seconds`` from now."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


def ended(holder: subprocess.Popen[str]) -> None:
    assert holder.wait(30) == 0


@pytest.mark.asyncio
async def test_a_lock_another_process_holds_is_waited_out_without_a_disk_message(
    demo: MainWindow, qtbot: QtBot
) -> None:
    """Another process holds the write lock for 6 s, past SQLite's 5 s busy wait: the window
    tries again, and the lead is queued once the lock goes, with no message about the disk."""
    demo.LOCK_RETRY = 0.2
    errors: list[str] = []
    demo.tasks.on_error = errors.append
    holder = hold_the_lock(demo.desk.paths.outbox, 6)
    ticks = [time.monotonic()]
    gaps: list[float] = []

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - ticks[-1])
        ticks.append(now)

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    try:
        started = time.monotonic()
        queue_lead(qtbot, demo, "Bo Chen", "03 7010 5678")
        await until(lambda: states(demo) == ["Delivered"], limit=40, what="queued after the lock")
        assert time.monotonic() - started > 5  # it really met the lock
    finally:
        timer.stop()
        ended(holder)
    # The window never froze meanwhile: the waiting is done off its thread.
    assert max(gaps) < 1.0, f"the window stalled {max(gaps):.2f} s"
    assert demo.problem_banner.reason is not BannerReason.QUEUE_FILE
    assert "not queued" not in demo.form.summary.text()
    assert errors == []
    assert len(demo.desk.outbox.leads(LeadQuery())) == 1


@pytest.mark.asyncio
async def test_a_failing_read_of_the_queue_is_a_banner_not_a_traceback(
    demo: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_lead(qtbot, demo, "Ann Lee", "03 7010 1234")
    await until(lambda: states(demo) == ["Delivered"], limit=20, what="a lead in the view")

    def broken(*_args: object, **_kwargs: object) -> object:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(Outbox, "leads", broken)
    monkeypatch.setattr(Outbox, "counts", broken)
    monkeypatch.setattr(Outbox, "get", broken)
    monkeypatch.setattr(Outbox, "leads_by_id", broken)
    monkeypatch.setattr(Outbox, "lead_ids", broken)
    monkeypatch.setattr(Outbox, "batch_counts", broken)
    monkeypatch.setattr(Outbox, "data_version", broken)
    banner = demo.problem_banner
    model = demo.queue_model

    async def a_page_painted() -> None:  # the view asks for rows it has not read yet
        model._cache.clear()
        assert model.data(model.index(0, 0)) is None
        await asyncio.sleep(0.05)  # the banner follows the paint

    async def searched() -> None:  # the view's query runs in a worker
        running = model.refresh()
        assert running is not None
        await running

    reads = [
        demo._load_queue,  # a raise in any of these would be a traceback in a slot
        lambda: demo._pending_ids.add(1) or demo._flush_changes(),
        demo._refresh_counts,
        demo._refresh_batches,
        demo._watch_outbox,
        lambda: demo._show_details(1),
        a_page_painted,
        searched,
    ]
    for read in reads:
        banner.clear()
        result = read()
        if asyncio.iscoroutine(result):
            await result
        assert banner.reason is BannerReason.QUEUE_FILE
        assert "damaged" in banner.text
        assert "Move it aside" in banner.text


def _aged(path: Path) -> None:
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))


def _foreign_database() -> bytes:
    """Another program's SQLite file, as bytes."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.execute("INSERT INTO contacts VALUES ('Ann')")
    db.commit()
    data = db.serialize()
    db.close()
    return data


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (os.urandom(8192), "damaged or not a Noojee Desk queue"),
        (_foreign_database(), "not a Noojee Desk queue"),
    ],
    ids=["empty", "random", "foreign"],
)
async def test_a_damaged_queue_file_at_start_is_said_and_can_be_set_aside(
    tmp_path: Path, qtbot: QtBot, content: bytes, words: str
) -> None:
    home = tmp_path / "home"
    desk = make_core_desk(home, emulator=Emulator())
    queue = desk.paths.outbox
    queue.write_bytes(content)
    _aged(queue)
    win = MainWindow(desk)
    win.show()
    try:
        await win.start(demo=True)
        banner = win.problem_banner
        assert banner.reason is BannerReason.QUEUE_FILE
        assert words in banner.text
        assert win.stack.currentWidget() is not win.work  # never an empty queue to work on
        captions = [b.text() for b in banner.buttons]
        assert captions == ["Set it aside and start empty", "Try again"]
        qtbot.mouseClick(banner.buttons[0], Qt.MouseButton.LeftButton)
        await until(lambda: win.stack.currentWidget() is win.work, what="the demo opens")
        assert banner.reason is not BannerReason.QUEUE_FILE
        kept = list(queue.parent.glob(queue.name + ".damaged-*"))
        assert len(kept) == 1
        assert kept[0].read_bytes() == content
        assert Outbox(queue).schema_version > 0  # a new, empty queue
    finally:
        await close_window(win)


@pytest.mark.asyncio
async def test_a_newer_queue_file_is_never_offered_for_setting_aside(
    tmp_path: Path, qtbot: QtBot
) -> None:
    """A queue from a newer Noojee Desk is not damaged: the window says to update, offers to
    try again, and leaves the file as it is."""
    home = tmp_path / "home"
    desk = make_core_desk(home, emulator=Emulator())
    queue = desk.paths.outbox
    Outbox(queue).close()
    with sqlite3.connect(queue) as db:
        db.execute("PRAGMA user_version = 999")
    win = MainWindow(desk)
    win.show()
    try:
        await win.start(demo=True)
        banner = win.problem_banner
        assert banner.reason is BannerReason.QUEUE_FILE
        assert "newer Noojee Desk" in banner.text
        assert [b.text() for b in banner.buttons] == ["Try again"]
        qtbot.mouseClick(banner.buttons[0], Qt.MouseButton.LeftButton)
        await until(lambda: not win.tasks._tasks, what="the second try")
        assert banner.reason is BannerReason.QUEUE_FILE
        assert win.stack.currentWidget() is not win.work
        assert not list(queue.parent.glob("*.damaged-*"))
    finally:
        await close_window(win)


@pytest.mark.asyncio
@pytest.mark.parametrize("failing", ["counts", "lead_ids"])  # on the loop; in the query's worker
async def test_a_change_whose_read_failed_is_read_again_at_the_next_look(
    demo: MainWindow, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """Another process queues a lead; the window's first read after that change fails for a
    moment (an I/O error): the next look reads the change again instead of taking it as seen."""
    demo._watch_timer.stop()  # the test does the looking
    demo.desk.dispatcher.pause("Paused by you")  # the lead stays queued: no events about it
    model = demo.queue_model
    assert model.rowCount() == 0
    with Outbox(demo.desk.paths.outbox) as other:
        lead = LeadInput({"Name": "Ann Lee", "FirstPhone": "0370101234"}, frozenset())
        other.queue_once(
            "Demo", Target(3, 42, 101), [lead], allow_duplicates=False, source="elsewhere",
            skip_delivered=False, reuse_finished=False,
        )  # fmt: skip
    real = getattr(Outbox, failing)
    failed: list[int] = []

    def once(self: Outbox, *args: object, **kwargs: object) -> object:
        if not failed:
            failed.append(1)
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Outbox, failing, once)
    demo._watch_outbox()
    await until(lambda: bool(failed) and not model._fetching, what="the failed read")
    await asyncio.sleep(0.1)
    assert model.rowCount() == 0
    assert demo.problem_banner.reason is BannerReason.QUEUE_FILE
    demo._watch_outbox()
    await until(lambda: model.rowCount() == 1, what="the lead read at the next look")
    assert "Queued 1" in demo.status_bar.counts_text


@pytest.mark.parametrize("agrees", [True, False])
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (os.urandom(8192), "damaged or not a Noojee Desk queue"),
        (_foreign_database(), "not a Noojee Desk queue"),
    ],
    ids=["empty", "random", "foreign"],
)
def test_a_damaged_queue_file_at_launch_is_set_aside_only_when_the_person_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agrees: bool, content: bytes, words: str
) -> None:
    """Before the window (no loop runs yet): a message box, for a 0-byte file, random bytes
    or another program's database alike; "Set it aside" renames the file (kept for support)
    and the desk opens on an empty queue."""
    home = tmp_path / "home"
    where = paths.resolve(str(home)).ensure()
    damaged = content
    where.outbox.write_bytes(damaged)
    _aged(where.outbox)
    said: list[str] = []

    def answer(box: QMessageBox) -> int:
        said.append(box.text())
        wanted = "Set it aside and start empty" if agrees else "Close"
        next(b for b in box.buttons() if b.text() == wanted).click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    desk = open_desk_or_explain(str(home))
    assert len(said) == 1
    assert words in said[0]
    kept = sorted(p.name for p in where.outbox.parent.glob(where.outbox.name + "*.damaged-*"))
    if not agrees:
        assert desk is None
        assert kept == []
        assert where.outbox.read_bytes() == damaged
        return
    assert desk is not None
    try:
        assert desk.outbox.counts().total == 0
    finally:
        desk.outbox.close()
    assert len(kept) == 1
    assert (where.outbox.parent / kept[0]).read_bytes() == damaged


@pytest.mark.asyncio
async def test_a_lasting_read_fault_is_logged_once_until_a_read_goes_through(
    demo: MainWindow, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The watch looks again at every tick while the file cannot be read: the banner stays,
    the log has the fault once (not twice a second), and again after a good read."""
    demo._watch_timer.stop()  # the test does the looking
    real = Outbox.counts
    broken = [True]

    def counts(self: Outbox, *args: object, **kwargs: object) -> object:
        if broken[0]:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Outbox, "counts", counts)

    def faults() -> int:
        return sum("disk I/O error" in r.getMessage() and r.levelno >= logging.ERROR
                   for r in caplog.records)  # fmt: skip

    for _ in range(5):
        demo._data_version = -1  # a change to look at, each time
        demo._watch_outbox()
    assert demo.problem_banner.reason is BannerReason.QUEUE_FILE
    assert faults() == 1
    broken[0] = False
    demo._data_version = -1
    demo._watch_outbox()
    broken[0] = True
    demo._data_version = -1
    demo._watch_outbox()
    assert faults() == 2


MALFORMED = "database disk image is malformed"


def _malformed(*_args: object, **_kwargs: object) -> object:
    raise sqlite3.DatabaseError(MALFORMED)


def _said_queue_file(window: MainWindow) -> None:
    banner = window.problem_banner
    assert banner.reason is BannerReason.QUEUE_FILE
    assert "damaged" in banner.text
    assert "Something went wrong" not in banner.text


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_an_export_that_cannot_read_the_queue_says_so_not_a_traceback(
    demo: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    from noojee_desk.core.delivery import export

    queue_lead(qtbot, demo, "Ann Lee", "03 7010 1234")
    await until(lambda: states(demo) == ["Delivered"], limit=20, what="a lead in the view")
    monkeypatch.setattr(export, f"write_{kind}", _malformed)
    failures: list[str] = []
    monkeypatch.setattr(demo, "_task_failed", failures.append)
    demo.tasks.on_error = failures.append
    path = tmp_path / f"results.{kind}"
    demo.export_results(kind)
    demo.export_dialog.fileSelected.emit(str(path))
    await until(lambda: not demo.tasks._tasks, what="the export to end")
    assert failures == []
    _said_queue_file(demo)
    assert not demo.export_progress.isVisible()
    assert "Exported" not in demo.status_bar.currentMessage()
    assert not path.exists()


@pytest.mark.asyncio
async def test_queue_controls_on_a_failing_queue_file_say_so_not_a_traceback(
    demo: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel, hold, retry, resend, "Send anyway", "Take back" and "Copy failed rows" write
    or read the queue file on the window's side: an I/O error or a damaged page is the
    queue-file banner, never an exception out of a slot."""
    from noojee_desk.core.delivery.dispatcher import Dispatcher
    from noojee_desk.core.delivery.setup import SetupStopped

    queue_lead(qtbot, demo, "Ann Lee", "03 7010 1234")
    await until(lambda: states(demo) == ["Delivered"], limit=20, what="a lead in the view")
    (lead,) = demo.desk.outbox.leads(LeadQuery())
    for name in ("cancel", "hold", "requeue", "requeue_duplicates", "leads", "take_back"):
        monkeypatch.setattr(Outbox, name, _malformed)
    monkeypatch.setattr("noojee_desk.core.delivery.export.rows", _malformed)
    stopped = SetupStopped(lead.batch_id, 104, 1, "The same refusal five times.", "Fix it.")

    def held_batch(button: Callable[[int], None]) -> Callable[[], None]:
        def press() -> None:  # a held batch's banner button
            demo._stopped[lead.batch_id] = stopped
            button(lead.batch_id)

        return press

    controls = [
        lambda: demo._control(Dispatcher.cancel, [lead.id]),
        lambda: demo._control(Dispatcher.hold, [lead.id]),
        lambda: demo._control(Dispatcher.retry, [lead.id]),
        lambda: demo._control(Dispatcher.resend_with_duplicates, [lead.id]),
        held_batch(demo._send_anyway),
        held_batch(demo._take_back),
        demo.copy_failed_rows,
    ]
    banner = demo.problem_banner
    for control in controls:
        banner.clear()
        control()
        _said_queue_file(demo)


@pytest.mark.asyncio
async def test_closing_over_an_unreadable_queue_file_still_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close question counts the open leads; when that read fails the window closes
    anyway (whatever is queued stays in the file) instead of raising out of closeEvent."""
    win = MainWindow(make_desk(tmp_path / "home"))
    win.show()
    await win.start(demo=True)
    await until(lambda: win.pickers.target() is not None, what="demo pickers")
    try:
        monkeypatch.setattr(Outbox, "counts", _malformed)
        closed = win.close()
        assert closed
        monkeypatch.undo()
    finally:
        await close_window(win)
