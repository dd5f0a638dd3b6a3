"""Build the QApplication and the one asyncio loop, wire the core services into the window."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

os.environ.setdefault("QT_API", "pyside6")

import PySide6  # noqa: F401  (imported before qasync, which then uses this binding)
import qasync
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from noojee_desk import APP_ID, APP_NAME, __version__
from noojee_desk.core import logs, paths
from noojee_desk.core.bulk import gc_paused
from noojee_desk.core.delivery.outbox import set_aside
from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.delivery.records import OutboxDamaged, OutboxError
from noojee_desk.core.desk import DemoFactory, Desk
from noojee_desk.core.leads.layouts import FieldLayout, field_spec
from noojee_desk.core.profiles import managed as managed_settings
from noojee_desk.core.profiles.secrets import KeyStore
from noojee_desk.core.profiles.settings import SettingsStore

if TYPE_CHECKING:
    import httpx

    from noojee_desk.ui.single import SingleInstance

log = logging.getLogger(__name__)
STARTED = time.perf_counter()


def resources_dir() -> str:
    """Folder of icons; inside a frozen bundle it sits next to the package data."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "resources")


class DemoPbx:
    """The built-in PBX, in-process: one emulator for the app's lifetime, no network.

    A DemoFactory: each call gives a transport to the emulator and its API key."""

    def __init__(self) -> None:
        from noojee_desk.sim.emulator import Emulator

        self.emulator = Emulator()

    def __call__(self) -> tuple[httpx.AsyncBaseTransport, str]:
        from noojee_desk.sim.data import DEMO_API_KEY

        return self.emulator.transport(), DEMO_API_KEY


def demo_factory() -> DemoPbx:
    """The built-in PBX for the desk's demo mode (see DemoPbx; its ``emulator`` for tests)."""
    return DemoPbx()


def running_app() -> QApplication:
    """The QApplication make_app made.

    PySide6's stubs type ``QApplication.instance()`` as the base QCoreApplication (or None), so
    the instance is checked to be the QApplication this module creates."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        raise RuntimeError("no QApplication is running (make_app makes it)")
    return app


def make_app(argv: list[str] | None = None) -> QApplication:
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    existing = QApplication.instance()  # typed QCoreApplication by PySide6's stubs
    app = existing if isinstance(existing, QApplication) else QApplication(argv or [sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("Noojee")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    from noojee_desk.ui import theme

    theme.follow_system(app)  # a high-contrast palette gets frames it can see
    hints = QGuiApplication.styleHints()
    hints.colorSchemeChanged.connect(lambda _scheme: theme.follow_system(app))
    icon = os.path.join(resources_dir(), "noojee-desk.png")
    if os.path.exists(icon):
        app.setWindowIcon(QIcon(icon))
    return app


class MainThreadCollector:
    """Runs Python's cycle collector on the GUI thread only.

    WORKAROUND https://github.com/AcademySoftwareFoundation/OpenCue/pull/598 : a collection
    that starts in a worker thread (the executor parsing a paste, say) may destroy Qt objects
    there, which Qt forbids. Automatic collection is turned off; a timer collects young objects
    often, all of them rarely. It waits while bulk work has paused collection (``paused_gc``):
    a worker checking a paste makes hundreds of thousands of objects a second, and walking
    them would stall the window for 50 to 90 ms; the work freezes them when it is done.
    """

    def __init__(self, app: QApplication) -> None:
        self._timer = QTimer(app)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.tick)
        self._ticks = 0
        gc.disable()
        self._timer.start()

    def tick(self) -> None:
        if gc_paused():
            return
        self._ticks += 1
        gc.collect(2 if self._ticks % 300 == 0 else 0)

    def stop(self) -> None:
        """No more timed collections (automatic collection stays off)."""
        self._timer.stop()


#: Built-in templates whose fields demo mode reads from the built-in PBX, as it would from a
#: real one: its field calls name them, a person confirms the phone fields guessed from names.
LEARNT_IN_DEMO: Final = frozenset({15, 18})


def demo_layouts() -> dict[int, FieldLayout]:
    """The layouts of the built-in PBX's templates that demo mode knows without asking (all but
    ``LEARNT_IN_DEMO``), so those need no field set-up."""
    from noojee_desk.sim.data import TEMPLATES

    return {
        t["id"]: FieldLayout(
            tuple(
                field_spec(f["name"], phone=f["phone"], required=f["required"]) for f in t["fields"]
            )
        )
        for t in TEMPLATES
        if t["id"] not in LEARNT_IN_DEMO
    }


def build_desk(
    home: str | None, *, demo: DemoFactory | None, timing: RetryTiming | None = None
) -> Desk:
    """The desk on ``home``; ``timing`` replaces the default retry waits (tests shorten them)."""
    where = paths.resolve(home).ensure()
    logs.setup(where.log_file)
    managed = managed_settings.load()
    desk = Desk(
        where,
        SettingsStore(where.settings, managed.managed),
        KeyStore(),
        demo=demo,
        demo_layouts=demo_layouts(),
        timing=timing,
        managed=managed,
    )
    desk.open_outbox()  # a damaged or locked queue file is reported before the window shows
    return desk


async def run_window(
    desk: Desk,
    *,
    start_demo: bool,
    on_shown: Callable[[float], None] | None = None,
    instance: SingleInstance | None = None,
    import_connection: str | None = None,
) -> int:
    """Show the window and live until the application quits (``instance``: a later launch on
    the same data folder brings it forward)."""
    from noojee_desk.ui.main_window import MainWindow

    app = running_app()
    # The window's close ends main() here, so the queue and the client shut down on a running
    # loop; a Qt-initiated quit would stop the loop under them.
    app.setQuitOnLastWindowClosed(False)
    quitting = asyncio.Event()
    app.aboutToQuit.connect(quitting.set)  # logout or a platform quit: best effort
    window = MainWindow(desk)
    window.closed.connect(quitting.set)
    from noojee_desk.ui.connection_file import FileOpenWatcher

    finder = FileOpenWatcher(window)  # a double-clicked .noojee file on macOS
    finder.opened.connect(window.import_connection_file)
    app.installEventFilter(finder)
    window.show()
    if instance is not None:

        def bring_forward() -> None:
            if window.isMinimized():
                window.showNormal()
            window.show()
            window.raise_()
            window.activateWindow()

        instance.on_raise = bring_forward
    if on_shown is not None:
        on_shown(time.perf_counter() - STARTED)
        if os.environ.get("NOOJEE_DESK_QUIT_AFTER_SHOW"):
            QTimer.singleShot(0, window.close)
    await window.start(demo=start_demo)
    if import_connection:
        window.import_connection_file(import_connection)  # --import-connection, a double-click
    await quitting.wait()
    app.removeEventFilter(finder)
    await window.shutdown()
    return 0


def open_desk_or_explain(home: str | None) -> Desk | None:
    """Build the desk; a queue file that cannot be used is explained, and a damaged one set
    aside if the person agrees."""
    from PySide6.QtWidgets import QMessageBox

    while True:
        try:
            return build_desk(home, demo=demo_factory())
        except OutboxError as exc:
            log.error("%s", exc)
            box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, str(exc))
            aside = None  # a busy, read-only or newer file is fine: never offered for setting aside
            if isinstance(exc, OutboxDamaged):
                aside = box.addButton(
                    "Set it aside and start empty", QMessageBox.ButtonRole.AcceptRole
                )
            box.addButton(QMessageBox.StandardButton.Close)
            box.exec()  # no event loop runs yet: a modal dialog is safe here
            if aside is None or box.clickedButton() is not aside:
                return None
            queue = paths.resolve(home).outbox
            try:
                moved = set_aside(queue)
            except OSError as exc:
                log.error("the damaged queue file could not be set aside: %s", exc)
                QMessageBox(
                    QMessageBox.Icon.Critical,
                    APP_NAME,
                    f"The queue file {exc.filename or queue} could not be set aside "
                    f"({exc.strerror or exc}); nothing was moved. "
                    f"Move it out of the data folder yourself, then start {APP_NAME} again.",
                    QMessageBox.StandardButton.Close,
                ).exec()
                return None
            log.warning("set the damaged queue file aside: %s", ", ".join(map(str, moved)))


def claim_folder(home: str | None) -> SingleInstance | None:
    """This launch's hold on its data folder, or None when another window has the folder (it
    was asked to come forward)."""
    from noojee_desk.ui.single import SingleInstance

    where = paths.resolve(home).ensure()
    logs.setup(where.log_file)
    instance = SingleInstance(where.data)
    if instance.claim():
        return instance
    log.info("Noojee Desk is already open on %s; brought that window forward", where.data)
    return None


def run_app(args: argparse.Namespace) -> int:
    app = make_app()
    instance = claim_folder(args.data_dir)
    if instance is None:
        print(f"{APP_NAME} is already open on this data folder; that window was brought forward.")  # noqa: T201
        return 0
    from noojee_desk.core.delivery import locks

    locks.PROGRAM = "the Noojee Desk window"  # who holds a queue, as others are told
    collector = MainThreadCollector(app)
    desk = open_desk_or_explain(args.data_dir)
    if desk is None:
        instance.release()
        return 1
    log.info("%s %s starting (data in %s)", APP_NAME, __version__, desk.paths.data)
    shown = None
    measuring = ("NOOJEE_DESK_REPORT_STARTUP", "NOOJEE_DESK_QUIT_AFTER_SHOW")
    if any(os.environ.get(name) for name in measuring):

        def shown(seconds: float) -> None:
            """Start-up measurement (NOOJEE_DESK_QUIT_AFTER_SHOW then closes the window)."""
            print(f"window shown after {seconds:.3f} s", flush=True)  # noqa: T201

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        code = runner.run(
            run_window(
                desk,
                start_demo=args.demo,
                on_shown=shown,
                instance=instance,
                import_connection=getattr(args, "import_connection", None),
            )
        )
    collector.stop()
    del collector
    instance.release()
    # Everything is shut down and written. The interpreter's last collection would now walk
    # every object the app ever made (automatic collection was off): they are left to the
    # process's end instead, which is what makes quitting quick.
    gc.freeze()
    return code
