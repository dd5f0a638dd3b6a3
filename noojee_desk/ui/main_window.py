"""The main window: connection, pickers, the lead form and batch grid, the queue, the status bar."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import sqlite3
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QSystemTrayIcon,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noojee_desk import APP_NAME
from noojee_desk.core.delivery import export
from noojee_desk.core.delivery.dispatcher import (
    BatchFinished,
    Dispatcher,
    LeadChanged,
    LeadsReloaded,
    QueueFigures,
)
from noojee_desk.core.delivery.order import Order
from noojee_desk.core.delivery.outbox import Outbox, SearchStopped, set_aside
from noojee_desk.core.delivery.records import (
    Enqueued,
    Lead,
    LeadInput,
    LeadQuery,
    OutboxError,
    State,
    StorageProblem,
    Target,
    is_locked,
    storage_problem,
)
from noojee_desk.core.delivery.setup import SetupStopped
from noojee_desk.core.desk import (
    Desk,
    DeskEvent,
    LearntLayout,
    SendingRestarted,
    SendingStopped,
    guess_sentence,
    sending_stopped_text,
)
from noojee_desk.core.leads.layouts import FieldLayout
from noojee_desk.core.leads.table import Table
from noojee_desk.core.leads.text_tables import to_tsv
from noojee_desk.core.leads.validate import ValidationSettings, prepare_checks
from noojee_desk.core.pbx import DEFAULT_TIMEZONE, EXTERNAL_ID_FIELD
from noojee_desk.core.profiles.settings import DEMO_PROFILE
from noojee_desk.ui import connection_file as connection_ui
from noojee_desk.ui.about import AboutDialog, ShortcutsDialog, shortcut_tooltip
from noojee_desk.ui.banner import Banner, BannerAction, BannerReason
from noojee_desk.ui.connect_dialog import ConnectDialog
from noojee_desk.ui.grid import BatchGrid
from noojee_desk.ui.grid.controls import day_text
from noojee_desk.ui.layout_dialog import LayoutDialog
from noojee_desk.ui.lead_form import FormLead, LeadForm
from noojee_desk.ui.managed_ui import lock_connection_fields
from noojee_desk.ui.pickers import PickerBar
from noojee_desk.ui.queue.model import QueueModel, clock_text
from noojee_desk.ui.queue.view import ExportProgress, LeadDetails, PauseAction, QueueView
from noojee_desk.ui.status_bar import StatusBar
from noojee_desk.ui.tasks import Tasks
from noojee_desk.ui.welcome import WelcomePage

log = logging.getLogger(__name__)

#: Problems of the profile that was open: a profile that opens fine takes them down. A damaged
#: settings file stays said: it was found at start, whichever profile opens next.
_AT_START = (BannerReason.SETTINGS_DAMAGED, BannerReason.MANAGED_DAMAGED)
_PROFILE_PROBLEMS = tuple(r for r in BannerReason if r not in _AT_START)

#: What the queue file can raise on the window's side: SQLite's errors and OutboxError.
_STORAGE_ERRORS = (sqlite3.Error, OutboxError)
#: Seconds between two chunks of the search index's backlog (sending and searching go between).
BACKLOG_PAUSE = 0.02

#: What a queue control says when none of the selected leads could be changed, and why.
_UNCHANGED = {
    "retry": "None of the selected leads can be retried: they are delivered, waiting to be "
    "sent, or taken back to the grid (queue those from the grid).",
    "hold": "None of the selected leads can be held: only leads waiting to be sent can.",
    "cancel": "None of the selected leads can be cancelled: only leads waiting to be sent can.",
    "resend_with_duplicates": "None of the selected leads was refused as a duplicate.",
}

_Read = TypeVar("_Read", bound=Callable[..., None])


def _reads_queue(method: _Read) -> _Read:
    """A window method that reads the queue file: a SQLite error becomes the queue-file banner
    (what happened and what to do), never a traceback; the next refresh reads again."""
    return _guarded(method, "reading the queue")


def _writes_queue(method: _Read) -> _Read:
    """A window method that changes leads in the queue file (a control of the queue view, a
    held batch's buttons): a SQLite error becomes the queue-file banner, never a traceback;
    nothing changed, and the person can try again."""
    return _guarded(method, "changing the queue")


def _guarded(method: _Read, doing: str) -> _Read:
    @functools.wraps(method)
    def guarded(self: MainWindow, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc, f"{doing} ({method.__name__})")

    return guarded  # type: ignore[return-value]


class QueueNotWritten(Exception):
    """Leads the window could not queue: ``str()`` says why and what to do. Nothing of the
    batch was written (one transaction), so the form or the grid keeps the leads."""

    def __init__(self, problem: StorageProblem) -> None:
        super().__init__(" ".join(p for p in (problem.sentence, problem.fix) if p))
        self.problem = problem


class _TabKeys(QObject):
    """Notes that a tab was chosen by its key (Alt+1, Alt+2: a shortcut event on the tab bar),
    so the focus goes into the page rather than wherever Qt moved it."""

    def __init__(self, parent: QObject, then: Callable[[], None]) -> None:
        super().__init__(parent)
        self.by_key = False
        self._then = then

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Shortcut:
            self.by_key = True
            # The tab already shown changes nothing (no currentChanged): the focus goes to it
            # all the same once the tab bar has handled the key.
            QTimer.singleShot(0, self._then)
        return False


class _WorkSplitter(QSplitter):
    """The splitter between the work area and the queue: a taller window gives all its new
    height to the work area (the form's fields and the grid's rows before more queue rows);
    a shorter one is squeezed as Qt does. Qt's own rule would first grow whichever part is
    under the size it asks for, which after a squeeze is the queue."""

    def resizeEvent(self, event: QResizeEvent) -> None:
        before = self.sizes()
        grown = event.size().height() - event.oldSize().height()
        super().resizeEvent(event)
        if event.oldSize().height() > 0 and grown > 0 and len(before) == 2 and before[0] > 0:
            self.setSizes([before[0] + grown, before[1]])


class MainWindow(QMainWindow):
    closed = Signal()  # the person closed the window (after confirming): the app ends
    #: How long a queue file another program holds is waited for, and the pause between tries.
    LOCK_WAIT = 120.0
    LOCK_RETRY = 1.0

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.desk = desk
        self.tasks = Tasks(on_error=self._task_failed)
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 780)  # then fitted to the screen (_fit_to_screen)
        self._geometry = QSettings(str(desk.paths.window_state), QSettings.Format.IniFormat)

        self.stack = QStackedWidget()
        self.welcome = WelcomePage()
        self.welcome.connect_requested.connect(self.new_connection)
        self.welcome.demo_requested.connect(lambda: self.tasks.spawn(self.open_demo()))
        self.work = QWidget()
        self.work.setObjectName("workPage")
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.work)
        self.setCentralWidget(self.stack)

        self.demo_banner = Banner("demoBanner")
        self.problem_banner = Banner("problemBanner")
        self.pickers = PickerBar(desk, self.tasks)
        self.pickers.blocked.connect(self._blocked)
        self.pickers.target_changed.connect(self._target_changed)
        self.pickers.refresh.clicked.connect(self._refresh_fields)
        self.fields_button = QToolButton()
        self.fields_button.setText("Fields…")
        self.fields_button.setObjectName("editLayout")
        self.fields_button.setToolTip("The template's fields and which are phone numbers")
        self.fields_button.setAccessibleName("Edit the template's fields")
        self.fields_button.clicked.connect(self.edit_layout)
        self.layout_hint = Banner("layoutHint")  # what is known about the template's fields
        self.setup_banner = Banner("setupBanner")  # a batch held for a set-up mistake

        self.form = LeadForm()
        self.form.submitted.connect(self._form_submitted)
        self.form.send_again.connect(lambda lead: self._form_submitted(lead, send_again=True))
        self.form.tab_order_changed.connect(self._chain_tabs)
        self.grid = BatchGrid(self.tasks)
        self.grid.queue_requested.connect(self._grid_queue_requested)
        self.grid.mapping_saved.connect(self._mapping_saved)
        self.entry_tabs = QTabWidget()
        self.entry_tabs.setObjectName("entryTabs")
        self.entry_tabs.addTab(self.form, "&1  Key in a lead")
        self.entry_tabs.addTab(self.grid, "&2  Paste many")
        self._tab_keys = _TabKeys(self, self._entry_tab_changed)
        self.entry_tabs.tabBar().installEventFilter(self._tab_keys)
        self.entry_tabs.currentChanged.connect(self._entry_tab_changed)

        self.queue_model = QueueModel(self._target_names, self._batch_name)
        self.queue_model.attach(
            self._find_lead_ids,
            self._read_leads,
            self._run_query,
            self._find_top_id,
            first=self._first_lead_ids,
            scan=self._scan_lead_ids,
            keyed=self._find_sort_keys,
        )
        self._batch_names: dict[int, str] = {}
        self.queue_view = QueueView(self.queue_model)
        self.queue_view.pause_toggled.connect(self._pause_toggled)
        self.queue_view.retry_requested.connect(lambda ids: self._control(Dispatcher.retry, ids))
        self.queue_view.hold_requested.connect(lambda ids: self._control(Dispatcher.hold, ids))
        self.queue_view.cancel_requested.connect(lambda ids: self._control(Dispatcher.cancel, ids))
        self.queue_view.resend_requested.connect(
            lambda ids: self._control(Dispatcher.resend_with_duplicates, ids)
        )
        self.queue_view.details_requested.connect(self._show_details)
        self.queue_view.export_requested.connect(self.export_results)
        self.queue_view.copy_failed_requested.connect(self.copy_failed_rows)
        self.queue_area = QWidget()
        self.queue_area.setObjectName("queueArea")
        queue_layout = QVBoxLayout(self.queue_area)
        queue_layout.setContentsMargins(0, 0, 0, 0)
        queue_layout.addWidget(self.queue_view)
        # The queue's rows of controls may ask for more width than a small or scaled screen
        # has (their texts grow as leads are sent); they are squeezed rather than pushing the
        # window past the screen's edge.
        self.queue_area.setMinimumWidth(480)
        splitter = _WorkSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("mainSplitter")
        splitter.addWidget(self.entry_tabs)
        splitter.addWidget(self.queue_area)
        # New height goes to the work area first: the form's fields before more queue rows.
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setCollapsible(0, False)
        splitter.setSizes([440, 260])
        self.splitter = splitter
        self.pickers.tools.insertWidget(1, self.fields_button)
        layout = QVBoxLayout(self.work)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addWidget(self.demo_banner)
        layout.addWidget(self.problem_banner)
        layout.addWidget(self.pickers)
        layout.addWidget(self.layout_hint)
        layout.addWidget(self.setup_banner)
        layout.addWidget(splitter, 1)

        self.status_bar = StatusBar(self._server_name)
        self.setStatusBar(self.status_bar)
        self.export_progress = ExportProgress()
        self.status_bar.addPermanentWidget(self.export_progress)
        self._pending_ids: set[int] = set()
        self._pending_batches: set[int] = set()
        self._flush_timer = QTimer(self, singleShot=True, interval=100)
        self._flush_timer.timeout.connect(self._flush_changes)
        # Leads another process (``noojee-desk send``) queues into the open profile: its commits
        # change the file's data version, a read that costs no I/O.
        self._data_version: int | None = None
        self._watch_timer = QTimer(self, interval=700)
        self._watch_timer.timeout.connect(self._watch_outbox)
        self._close_confirmed = False
        self._closing = False
        self._storage_said = ""  # the last queue-file fault logged (a lasting one is logged once)
        self._session_batches: set[int] = set()
        self._layout_template: int | None = None  # the template whose layout is applied
        self._layout: FieldLayout | None = None  # the layout the form and the grid have
        self._layout_ready = True  # False while a template's fields are read for the first time
        self._learning = 0  # the latest request for a template's fields (older answers: ignored)
        # The phone rules and time zone of each set of checking rules, built in a worker (the
        # first build reads phonenumbers' metadata: too long for the UI thread).
        self._checks: dict[ValidationSettings, asyncio.Task[None]] = {}
        self._checks_ready = True  # False while the applied layout waits for its checks
        self._applying = 0  # the latest layout applied (an older one's checks: not used)
        self._stopped: dict[int, SetupStopped] = {}  # batches held for a set-up mistake
        # Sending stopped by an unexpected error: the error and when it starts again.
        self._restart: tuple[str, float] = ("", 0.0)
        self._restart_timer = QTimer(self, interval=1000)
        self._restart_timer.timeout.connect(self._count_down_restart)
        self._tray: QSystemTrayIcon | None = None
        self.desk.subscribe(self._on_event)
        self._build_actions()
        # Each renders its own piece of the dispatcher's figures (the banner: _show_attention).
        self._figure_views = (self.status_bar, self.queue_view, self.act_pause)
        self._fitted = False
        self._restore_geometry()
        self._chain_tabs()
        self._settle_accessibility()
        self.setAcceptDrops(True)

    # -- actions and menus -------------------------------------------------------------------

    def _build_actions(self) -> None:
        bar = QToolBar("Connection")
        self.toolbar = bar
        bar.setObjectName("connectionToolbar")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.profile_box = QComboBox()
        self.profile_box.setObjectName("profileSwitcher")
        self.profile_box.setAccessibleName("Connection")
        self.profile_box.setMinimumContentsLength(16)
        self.profile_box.activated.connect(self._profile_picked)
        bar.addWidget(QLabel(" Connection: "))
        bar.addWidget(self.profile_box)

        def action(
            text: str,
            slot,
            shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
            name: str = "",
        ):
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(shortcut)
            if name:
                act.setObjectName(name)
            act.triggered.connect(slot)
            return act

        self.act_new = action(
            "&New connection…", self.new_connection, "Ctrl+Shift+N", "actNewConnection"
        )
        self.act_edit = action(
            "&Edit connection…", self.edit_connection, "Ctrl+K", "actEditConnection"
        )
        self.act_forget = action("&Forget key", self.forget_key, "Ctrl+Shift+K", "actForgetKey")
        self.act_demo = action(
            "Open the &demo", lambda: self.tasks.spawn(self.open_demo()), "Ctrl+Shift+D", "actDemo"
        )
        self.act_quit = action("&Quit", self.close, "Ctrl+Q", "actQuit")
        self.act_about = action("&About Noojee Desk", self.about, "Ctrl+F1", "actAbout")
        self.act_keys = action("&Keyboard shortcuts", self.show_shortcuts, "F1", "actShortcuts")
        self.act_open = action("&Open leads file…", self._open_file, "Ctrl+O", "actOpenFile")
        self.act_paste = action("&Paste leads", self._paste, "Ctrl+Shift+V", "actPasteLeads")
        self.act_form = action("Key in a &lead", self._focus_form, "Ctrl+L", "actKeyInLead")
        self.act_export_csv = action(
            "&Export results as CSV…", lambda: self.export_results("csv"), "Ctrl+E", "actExportCsv"
        )
        self.act_export_xlsx = action(
            "Export results as E&xcel…",
            lambda: self.export_results("xlsx"),
            "Ctrl+Shift+E",
            "actExportXlsx",
        )
        self.act_pause = PauseAction(self)
        self.act_pause.triggered.connect(self._toggle_pause)
        # One key for pausing: the menu's action (the queue's button shows the same state).
        self.queue_view.pause.setShortcut(QKeySequence())
        self.act_pause.setShortcut(QKeySequence("Ctrl+P"))
        self.act_fields = action("Template &fields…", self.edit_layout, "Ctrl+Shift+T", "actFields")
        self.act_pickers = action(
            "Choose &template…", self._focus_pickers, "Ctrl+T", "actChooseTemplate"
        )
        self.act_refresh = action("&Refresh lists", self.pickers.refresh.click, "F5", "actRefresh")
        self.pickers.refresh.setShortcut(QKeySequence())  # F5 is the action's
        view = self.queue_view
        view.act_resend.setShortcut(QKeySequence("Ctrl+Shift+R"))
        view.act_details.setShortcut(QKeySequence("Ctrl+I"))
        view.act_copy_failed.setShortcut(QKeySequence("Ctrl+Shift+C"))
        bar.addAction(self.act_edit)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.file_menu = file_menu
        for act in (self.act_form, self.act_paste, self.act_open):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export_csv)
        file_menu.addAction(self.act_export_xlsx)
        file_menu.addSeparator()
        self._add_connection_file_actions(file_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit = menu.addMenu("&Edit")
        edit.addAction(self.grid.undo_action)
        edit.addAction(self.grid.redo_action)
        conn = menu.addMenu("&Connection")
        for act in (self.act_new, self.act_edit, self.act_forget, self.act_demo):
            conn.addAction(act)
        conn.addSeparator()
        for act in (self.act_pickers, self.act_refresh, self.act_fields):
            conn.addAction(act)
        self.queue_menu = menu.addMenu("&Queue")
        self.queue_menu.addAction(self.act_pause)
        for act in (*self.queue_view.lead_actions, self.queue_view.act_copy_failed):
            self.queue_menu.addAction(act)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.act_keys)
        help_menu.addAction(self.act_about)
        self.help_menu = help_menu
        for act in self.shortcut_actions():
            shortcut_tooltip(act)

    def shortcut_actions(self) -> list[QAction]:
        """Every action of the window with its key, in menu order, then the form's."""
        found: list[QAction] = []
        for top in self.menuBar().actions():
            sub = top.menu()
            if not isinstance(sub, QMenu):
                continue
            found += [a for a in sub.actions() if not a.isSeparator() and a.menu() is None]
        return [*found, *self.form.actions()]

    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(self.shortcut_sections(), self)
        self.shortcuts_dialog = dialog
        dialog.open()

    def shortcut_sections(self) -> list[tuple[str, list[QAction]]]:
        """The window's actions by menu (and the form's), for Help ▸ Keyboard shortcuts."""
        sections: list[tuple[str, list[QAction]]] = []
        for top in self.menuBar().actions():
            sub = top.menu()
            if not isinstance(sub, QMenu):
                continue
            acts = [a for a in sub.actions() if not a.isSeparator() and a.menu() is None]
            sections.append((top.text().replace("&", ""), acts))
        sections.append(("Key in a lead", list(self.form.actions())))
        grid = self.grid.grid_actions
        keyed = (grid.fix, grid.fix_all, grid.problems, grid.field, grid.remove, grid.queue)
        sections.append(("Paste many", list(keyed)))
        return sections

    def _settle_accessibility(self) -> None:
        """Names for the controls Qt makes itself (a line edit's clear button)."""
        for line in self.findChildren(QLineEdit):
            name = line.accessibleName() or line.placeholderText() or "the text"
            for button in line.findChildren(QToolButton):
                if not button.accessibleName():
                    button.setAccessibleName(f"Clear {name[:1].lower()}{name[1:]}")

    def _focus_pickers(self) -> None:
        """Ctrl+T: to the template picker (Tab passes the pickers by once all are chosen)."""
        self.pickers.template.setFocus(Qt.FocusReason.ShortcutFocusReason)
        line = self.pickers.template.lineEdit()
        if line is not None:
            line.selectAll()

    def _chain_tabs(self) -> None:
        """Tab order: the pickers (passed by while all are chosen), the form's fields, its
        dialling options, Queue, then the tabs and the queue."""
        chain: list[QWidget] = [*self.pickers.boxes, self.pickers.refresh, self.fields_button]
        chain += self.form.tab_chain()
        chain.append(self.entry_tabs.tabBar())
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _focus_first_field(self) -> None:
        """The form's first field takes the focus unless the person is at work elsewhere (the
        grid, the queue, a dialog)."""
        if self.entry_tabs.currentWidget() is not self.form:
            return
        focus = self.focusWidget()
        free = focus is None or focus is self or focus is self.entry_tabs.tabBar()
        if free or self.pickers.isAncestorOf(focus) or self.form.isAncestorOf(focus):
            self.form.focus_first()

    # -- start, profiles ---------------------------------------------------------------------

    async def start(self, *, demo: bool = False) -> None:
        self._apply_managed()
        if self.desk.store.load_warning:
            self.problem_banner.say(BannerReason.SETTINGS_DAMAGED, self.desk.store.load_warning)
        if not self._queue_opens(demo):
            return
        self.tasks.spawn(self._index_backlog(), name="search index")
        if demo:
            await self.open_demo()
        elif self.desk.profile is not None:
            await self.open_profile(self.desk.profile.name)
        else:
            self.stack.setCurrentWidget(self.welcome)
            self.toolbar.hide()
            self.welcome.connect_button.setFocus()
        self._refresh_profiles()

    # -- the queue file ------------------------------------------------------------------------

    def _queue_opens(self, demo: bool) -> bool:
        """Whether the queue file opens; if not, the banner says why, offers to set a damaged
        one aside (and start empty) or to try again, and no profile opens on an empty queue."""
        try:
            self.desk.open_outbox()
        except OutboxError as exc:
            log.error("%s", exc)
            problem = storage_problem(exc, self.desk.paths.outbox)
            again: BannerAction = (
                "Try again",
                lambda: self.tasks.spawn(self._start_again(demo), name="start"),
            )
            actions = [again]
            if problem.damaged:
                actions = [
                    ("Set it aside and start empty", lambda: self._set_queue_aside(demo)),
                    again,
                ]
            text = " ".join(p for p in (problem.sentence, problem.fix) if p)
            self.problem_banner.say(BannerReason.QUEUE_FILE, text, actions)
            self.queue_model.reset([])
            self.stack.setCurrentWidget(self.welcome)
            self.toolbar.hide()
            return False
        self.problem_banner.clear(BannerReason.QUEUE_FILE)
        return True

    async def _start_again(self, demo: bool) -> None:
        await self.start(demo=demo)

    def _set_queue_aside(self, demo: bool) -> None:
        """The damaged queue file is renamed (kept for support) and an empty queue starts."""
        try:
            moved = set_aside(self.desk.paths.outbox)
        except OSError as exc:
            self.problem_banner.say(
                BannerReason.QUEUE_FILE,
                f"The queue file {exc.filename or self.desk.paths.outbox} could not be set "
                f"aside ({exc.strerror or exc}); nothing was moved. "
                "Move it out of the data folder yourself, then start Noojee Desk again.",
            )
            return
        log.warning("set the damaged queue file aside: %s", ", ".join(map(str, moved)))
        if moved:
            self.status_bar.showMessage(f"The damaged queue file was kept as {moved[0]}.", 10000)
        self.tasks.spawn(self._start_again(demo), name="start")

    def _storage_failed(self, exc: BaseException, doing: str) -> StorageProblem:
        """A SQLite error on the window's side: logged, and said in the queue-file banner."""
        problem = storage_problem(exc, self.desk.paths.outbox)
        said = f"{doing} failed: {type(exc).__name__}: {exc}"
        # A lasting fault fails every watch tick the same way: in the log once, until a read
        # goes through again.
        log.log(logging.DEBUG if said == self._storage_said else logging.ERROR, "%s", said)
        self._storage_said = said
        if problem.locked:
            return problem  # another writer, for a moment: the next read goes through
        text = " ".join(p for p in (problem.sentence, problem.fix) if p)
        self.problem_banner.say(BannerReason.QUEUE_FILE, text)
        return problem

    def _refresh_profiles(self) -> None:
        self.profile_box.blockSignals(True)
        self.profile_box.clear()
        for profile in self.desk.settings.profiles:
            label = "Demo (built-in PBX)" if profile.demo else profile.name
            self.profile_box.addItem(label, profile.name)
        active = self.desk.profile
        if active is not None:
            self.profile_box.setCurrentIndex(self.profile_box.findData(active.name))
        self.profile_box.blockSignals(False)
        real = active is not None and not active.demo
        self.act_edit.setEnabled(real)
        self.act_forget.setEnabled(real)

    def _profile_picked(self, index: int) -> None:
        name = self.profile_box.itemData(index)
        if name and (self.desk.profile is None or name != self.desk.profile.name):
            self.tasks.spawn(self.open_profile(name), name="switch profile")

    async def open_demo(self) -> None:
        profile = self.desk.ensure_demo_profile()
        if profile.template_id is None:
            # A first look at the demo shows a working choice rather than three empty boxes.
            from noojee_desk.sim import data

            first = data.TEMPLATES[0]["id"]
            campaign = next(c["id"] for c in data.CAMPAIGNS if c["template_id"] == first)
            allocation = next(a["id"] for a in data.ALLOCATIONS if a["campaign_id"] == campaign)
            profile.template_id, profile.campaign_id = first, campaign
            profile.allocation_id = allocation
        await self.open_profile(DEMO_PROFILE)  # which saves the settings

    async def open_profile(self, name: str) -> None:
        opened = await self.desk.open(name)
        self._prepared(self.desk.validation_settings())  # while the lists load
        self._layout_template = None  # another profile: its own layouts and settings
        self._layout, self._layout_ready = None, True
        self._applying += 1
        self._checks_ready = True
        self._learning += 1
        self.layout_hint.clear()
        self._stopped.clear()  # held batches belong to the profile that was open
        self.setup_banner.clear()
        self.tasks.spawn(self.desk.save_settings_soon(), name="save the settings")
        self._refresh_profiles()
        self._load_queue()  # what this profile queued and sent before, and the batch bars
        self.stack.setCurrentWidget(self.work)
        self.toolbar.show()
        profile = opened.profile
        if profile.demo:
            # Ends with the app's name, so the platform adds it no second time.
            self.setWindowTitle(f"DEMO — {APP_NAME}")
            self.demo_banner.say(
                BannerReason.DEMO_MODE,
                "DEMO MODE: leads go to the built-in practice PBX on this computer, not to a real "
                "dialler. Use Connection ▸ New connection… for your PBX.",
            )
        else:
            self.setWindowTitle(f"{profile.name} — {APP_NAME}")
            self.demo_banner.clear()
        if opened.client is None:
            self.problem_banner.say(
                BannerReason.NOT_CONNECTED, opened.problem, [("Enter key…", self.edit_connection)]
            )
            self.pickers.clear()
            self.status_bar.set_connection("Not connected: " + opened.problem.split(".")[0])
            return
        self.problem_banner.clear(*_PROFILE_PROBLEMS)
        self.status_bar.set_connection(
            "Demo PBX (built in)" if profile.demo else f"Connected to {profile.name}"
        )
        self.pickers.reload()

    def _server_name(self) -> str:
        profile = self.desk.profile
        if profile is None:
            return ""
        return "Demo PBX (built in)" if profile.demo else profile.name

    def _blocked(self, text: str) -> None:
        self.problem_banner.say(
            BannerReason.CONNECTION_BLOCKED,
            text,
            [("Connection settings…", self.edit_connection)],
        )

    def new_connection(self) -> None:
        self._open_dialog(None)

    def edit_connection(self) -> None:
        profile = self.desk.profile
        self._open_dialog(profile if profile is not None and not profile.demo else None)

    def _open_dialog(self, profile) -> None:
        dialog = ConnectDialog(self.desk, self.tasks, profile, self)
        lock_connection_fields(dialog, self.desk, profile)
        dialog.saved.connect(self._connection_saved)
        dialog.open()
        self.connect_dialog = dialog

    def _connection_saved(self, name: str, warning: str) -> None:
        self.tasks.spawn(self._after_save(name, warning), name="open saved connection")

    async def _after_save(self, name: str, warning: str) -> None:
        await self.open_profile(name)
        if warning:
            self.problem_banner.say(BannerReason.CONNECTION_NOT_SAVED, warning)

    def forget_key(self) -> None:
        profile = self.desk.profile
        if profile is None or profile.demo:
            return
        answer = QMessageBox.question(
            self,
            "Forget key",
            f"Remove the API key of '{profile.name}' from this computer's password store? "
            "Queued leads stay queued until a key is entered again.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.tasks.spawn(self._forget(profile.name), name="forget key")

    async def _forget(self, name: str) -> None:
        await self.desk.forget_key(name)
        await self.open_profile(name)

    def about(self) -> None:
        dialog = AboutDialog(self.desk, self.tasks, self)
        self.about_dialog = dialog
        dialog.open()

    def _task_failed(self, text: str) -> None:
        self.problem_banner.say(BannerReason.TASK_FAILED, text)

    # -- files dropped anywhere on the window go to the grid ------------------------------

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        on_work = self.stack.currentWidget() is self.work and mime.hasUrls()
        if on_work or connection_ui.dropped_connection_file(mime) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        dropped = connection_ui.dropped_connection_file(event.mimeData())
        if dropped is not None:
            self.import_connection_file(dropped)
            event.acceptProposedAction()
        elif self.stack.currentWidget() is self.work and self.grid.handle_drop(event.mimeData()):
            self.entry_tabs.setCurrentWidget(self.grid)
            event.acceptProposedAction()

    # -- managed settings and connection files ------------------------------------------

    def _apply_managed(self) -> None:
        """What the administrator's settings change in the window (demo off, a damaged file)."""
        allowed = self.desk.demo_allowed
        self.welcome.set_demo_allowed(allowed)
        self.act_demo.setVisible(allowed)
        if self.desk.managed.problem:
            self.problem_banner.say(BannerReason.MANAGED_DAMAGED, self.desk.managed.problem)

    def _add_connection_file_actions(self, menu) -> None:
        self.act_export_connection = QAction("Export &connection…", self)
        self.act_export_connection.setObjectName("actExportConnection")
        self.act_export_connection.setShortcut(QKeySequence("Ctrl+Shift+X"))
        self.act_export_connection.triggered.connect(self.export_connection)
        self.act_import_connection = QAction("&Add connection from file…", self)
        self.act_import_connection.setObjectName("actImportConnection")
        self.act_import_connection.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.act_import_connection.triggered.connect(self.choose_connection_file)
        menu.addAction(self.act_import_connection)
        menu.addAction(self.act_export_connection)

    def export_connection(self) -> None:
        profile = self.desk.profile
        if profile is None or profile.demo:
            self.status_bar.showMessage("Open a connection to a PBX first.", 4000)
            return
        self.export_connection_dialog = connection_ui.export_dialog(
            self, profile, self.status_bar.showMessage
        )

    def choose_connection_file(self) -> None:
        self.import_file_dialog = connection_ui.open_dialog(self, self.import_connection_file)

    def import_connection_file(self, path: str) -> None:
        """Show what a connection file holds and ask for the key; refuse a bad file clearly."""
        dialog = connection_ui.import_dialog(self.desk, self.tasks, path, self)
        if isinstance(dialog, QMessageBox):
            self.import_refused_box = dialog
            dialog.open()
            return
        dialog.saved.connect(self._connection_saved)
        self.import_dialog = dialog
        dialog.open()

    # -- template, layout, entry ------------------------------------------------------------

    def _target_changed(self, target: Target | None) -> None:
        template_id = self.pickers.template.current_id()
        self.fields_button.setEnabled(template_id is not None)
        self.act_fields.setEnabled(template_id is not None)
        # The pickers report each of their three choices; the layout depends on the template.
        if template_id is not None and template_id != self._layout_template:
            self._pick_layout(template_id)
        self._sync_ready()

    def _sync_ready(self) -> None:
        target = self.pickers.target()
        ready = target is not None and self._layout_ready and self._checks_ready
        was_ready = self.form.target_ready
        waiting = "" if target is None or self._checks_ready else "Getting the checks ready…"
        self.form.set_target_ready(ready, waiting)
        if ready and not was_ready:
            self._focus_first_field()  # all three chosen: the next thing to do is type
        self.grid.set_target_ready(ready)
        self.grid.delivered_lookup = None if target is None else self._delivered_lookup(target)

    def _delivered_lookup(self, target: Target) -> Callable[[list], dict[int, float | None]]:
        def lookup(fields: list) -> dict[int, float | None]:
            found = self.desk.delivered_before(target, fields)
            return {i: d.delivered_at for i, d in found.items()}

        return lookup

    def _pick_layout(self, template_id: int) -> None:
        """A template was picked: its stored fields now, then what the PBX says about them."""
        self._layout_template = template_id
        self.layout_hint.clear()
        stored = self.desk.stored_layout(template_id)
        if stored is not None:
            self._apply_layout(template_id, stored)
        else:
            # Nothing known yet: the fields come from the PBX in a moment (or the usual ones).
            self._layout_ready = False
            self.status_bar.showMessage("Reading the template's fields from the PBX…")
        self._learn(template_id)

    def _refresh_fields(self) -> None:
        """Refresh: the lists, and the picked template's fields, from the PBX again."""
        if self._layout_template is not None:
            self._learn(self._layout_template)

    def _learn(self, template_id: int) -> None:
        self._learning += 1
        self.tasks.spawn(
            self._learn_layout(template_id, self._learning), name="read the template's fields"
        )

    async def _learn_layout(self, template_id: int, request: int) -> None:
        try:
            learnt = await self.desk.learn_layout(template_id)
        except Exception:
            if request != self._learning:
                return  # another profile or template meanwhile: nothing to say
            if not self._layout_ready:
                self._apply_layout(template_id, self.desk.layout_for(template_id))
            raise
        if request != self._learning or template_id != self._layout_template:
            return  # a newer request was made meanwhile
        waited = not self._layout_ready
        if waited or learnt.layout != self._layout:
            self._apply_layout(template_id, learnt.layout)
        if waited:
            self.status_bar.clearMessage()  # "Reading the template's fields…" is done
        self._show_fields_note(template_id, learnt)

    def _show_fields_note(self, template_id: int, learnt: LearntLayout) -> None:
        """The banner about the template's fields: guessed phone fields to check, or a calm
        sentence about what is known (nothing when all is well)."""
        layout = learnt.layout
        check = ("Check fields…", self.edit_layout)
        if learnt.needs_look:
            guess = guess_sentence(layout)
            text = learnt.message if guess in learnt.message else f"{learnt.message} {guess}"
            actions = [check]
            if layout.phone_fields:
                actions.append(("Looks right", lambda: self._confirm_layout(template_id)))
            self.layout_hint.say(BannerReason.FIELDS_NEED_LOOK, text.strip(), actions)
        elif learnt.message:
            self.layout_hint.say(BannerReason.FIELDS_NOTE, learnt.message, [check])
        else:
            self.layout_hint.clear()

    def _confirm_layout(self, template_id: int) -> None:
        """ "Looks right": the guessed phone fields are the ones the dialler calls."""
        layout = self._layout
        if layout is None or template_id != self._layout_template:
            return
        confirmed = layout.confirmed_as_is()
        self._layout = confirmed
        problem = self.desk.save_layout(template_id, confirmed)
        if problem:
            self.problem_banner.say(BannerReason.SETTINGS_NOT_SAVED, problem)
        self.layout_hint.clear(BannerReason.FIELDS_NEED_LOOK)
        phones = ", ".join(spec.title for spec in confirmed.fields if spec.phone)
        self.status_bar.showMessage(f"Phone fields confirmed: {phones}.", 6000)

    def _prepared(self, settings: ValidationSettings) -> asyncio.Task[None]:
        """The build of ``settings``' phone rules and time zone in a worker (started once)."""
        checks = self._checks.get(settings)
        if checks is None or (checks.done() and (checks.cancelled() or checks.exception())):
            checks = self.tasks.spawn(
                self.tasks.in_worker(prepare_checks, settings), name="prepare the checks"
            )
            self._checks[settings] = checks
        return checks

    def _apply_layout(self, template_id: int, layout: FieldLayout) -> None:
        """The form and the grid take ``layout`` with its checks; until the checks' rules are
        built (a worker, once per set of rules) neither can queue, so no lead goes unchecked."""
        self._layout_template = template_id
        self._layout, self._layout_ready = layout, True
        self._applying += 1
        checks = self._prepared(self.desk.validation_settings())
        if checks.done():
            self._set_layout(layout)
            return
        self._checks_ready = False
        self._sync_ready()
        self.tasks.spawn(
            self._apply_when_prepared(checks, layout, self._applying), name="apply the fields"
        )

    async def _apply_when_prepared(
        self, checks: asyncio.Task[None], layout: FieldLayout, request: int
    ) -> None:
        with contextlib.suppress(Exception):  # said by the task itself; the form builds them then
            await asyncio.shield(checks)  # shared: cancelling this one must not cancel it
        if request == self._applying and not self._closing:
            self._set_layout(layout)

    def _set_layout(self, layout: FieldLayout) -> None:
        self._checks_ready = True
        profile = self.desk.profile
        timezone = profile.timezone if profile is not None else DEFAULT_TIMEZONE
        self.form.set_layout(
            layout, self.desk.validator(layout), timezone, other_phones=self.desk.queued_phones
        )
        self.grid.set_layout(layout, self.desk.validator(layout), self.desk.settings.mappings)
        self._sync_ready()

    def edit_layout(self) -> None:
        template_id = self.pickers.template.current_id()
        if template_id is not None:
            self.edit_fields_of(template_id)

    def edit_fields_of(self, template_id: int) -> None:
        """The layout dialog for ``template_id``'s fields; saving confirms them."""
        box = self.pickers.template
        index = box.findData(template_id)
        name = box.itemText(index).split("  (#")[0] if index >= 0 else f"template {template_id}"
        layout = self._layout if template_id == self._layout_template else None
        dialog = LayoutDialog(layout or self.desk.layout_for(template_id), name, self)
        dialog.accepted.connect(lambda: self._layout_saved(template_id, dialog))
        self.layout_dialog = dialog
        dialog.open()

    def _layout_saved(self, template_id: int, dialog: LayoutDialog) -> None:
        layout = dialog.layout()
        problem = self.desk.save_layout(template_id, layout)
        if problem:
            self.problem_banner.say(BannerReason.SETTINGS_NOT_SAVED, problem)
        if template_id == self._layout_template:
            self._learning += 1  # an answer still on its way must not undo the person's choice
            self.layout_hint.clear()
            self._apply_layout(template_id, layout)

    def _mapping_saved(self, signature: str, mapping: list) -> None:
        self.desk.settings.mappings[signature] = list(mapping)
        problem = self.desk.save_settings()
        if problem:
            self.problem_banner.say(BannerReason.SETTINGS_NOT_SAVED, problem)

    def _focus_form(self) -> None:
        self.entry_tabs.setCurrentWidget(self.form)
        self.form.clear()

    def _paste(self) -> None:
        self._show_grid()
        self.grid.paste_from_clipboard()

    def _open_file(self) -> None:
        self._show_grid()  # the file dialog gives the focus back to the table
        self.grid.choose_file()

    def _show_grid(self) -> None:
        self.entry_tabs.setCurrentWidget(self.grid)
        self.grid.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _entry_tab_changed(self, _index: int = -1) -> None:
        """A tab chosen by its key (Alt+1, Alt+2), or the focus left with nowhere to go: the
        page's place to type takes it (the form's first field, the grid's table). Arrows on the
        focused tab bar keep the focus there, as in any tab bar; so does a place in the grid
        the person was at (its table or its problem list)."""
        by_key, self._tab_keys.by_key = self._tab_keys.by_key, False
        page = self.entry_tabs.currentWidget()
        focus = self.focusWidget()
        if not by_key and focus is not None and focus.isVisible():
            if not page.isAncestorOf(focus):
                return  # the tab bar, the pickers, the queue
            if page is self.form or self.grid.panel.isAncestorOf(focus):
                return
        if page is self.form:
            self.form.focus_first()
        elif page is self.grid:
            self.grid.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # -- queueing ------------------------------------------------------------------------------

    def _form_submitted(self, lead: FormLead, send_again: bool = False) -> None:
        target = self.pickers.target()
        if target is None:
            return
        self.tasks.spawn(self._enqueue_form(target, lead, send_again), name="queue lead")

    async def _enqueue_form(self, target: Target, lead: FormLead, send_again: bool) -> None:
        leads = [LeadInput(lead.fields, lead.phones)]
        try:
            queued = await self.enqueue(
                target, leads, lead.allow_duplicates, "Keyed in", send_again
            )
        except QueueNotWritten as exc:
            self.form.queue_failed(lead, str(exc))  # the lead goes back into the form
            return
        if queued.skipped:
            when = queued.skipped[0].delivered_at
            self.form.delivered_before(lead, f"on {day_text(when)}" if when else "before")

    def _grid_queue_requested(self, grid_leads: list, source: str, send_again: bool) -> None:
        target = self.pickers.target()
        if target is None:
            self.grid.queue_failed("choose a template, campaign and allocation first.")
            return
        work = self._enqueue_grid(target, grid_leads, source, send_again)
        self.tasks.spawn(work, name="queue grid")

    async def _enqueue_grid(
        self, target: Target, grid_leads: list, source: str, send_again: bool
    ) -> None:
        leads = [LeadInput(g.fields, g.phones, g.row) for g in grid_leads]
        try:
            queued = await self.enqueue(target, leads, False, source, send_again)
        except Exception as exc:
            log.exception("queueing %d grid rows failed", len(leads))
            self.grid.queue_failed(str(exc))
            return
        self.grid.rows_queued([g.row_id for g in grid_leads], len(queued.skipped))

    async def enqueue(
        self,
        target: Target,
        leads: list[LeadInput],
        allow_duplicates: bool,
        source: str,
        send_again: bool = False,
    ) -> Enqueued:
        """Queue ``leads`` as one batch (as the form and the grid do) and show them; leads
        delivered to ``target`` before are left out unless ``send_again``. A queue file another
        program holds is waited for (up to ``LOCK_WAIT`` seconds); any other SQLite error
        raises QueueNotWritten, saying what to do, with none of the leads queued."""
        waited_since: float | None = None
        while True:
            try:
                queued = await self.desk.enqueue(
                    target,
                    leads,
                    allow_duplicates=allow_duplicates,
                    source=source,
                    send_again=send_again,
                )
                break
            except _STORAGE_ERRORS as exc:
                now = time.monotonic()
                if is_locked(exc) and (waited_since is None or now - waited_since < self.LOCK_WAIT):
                    waited_since = now if waited_since is None else waited_since
                    log.info("the queue file is locked; queueing %d leads again", len(leads))
                    self.status_bar.showMessage(
                        "Another program is writing to the queue file; waiting to queue "
                        f"{len(leads):,} lead{'s' if len(leads) != 1 else ''}…",
                        5000,
                    )
                    await asyncio.sleep(self.LOCK_RETRY)
                    continue
                problem = self._storage_failed(exc, f"queueing {len(leads)} leads")
                if problem.locked:
                    problem = StorageProblem(
                        f"Another program has held the queue file {self.desk.paths.outbox} "
                        f"for over {self.LOCK_WAIT:g} seconds.",
                        "Close other copies of Noojee Desk or 'noojee-desk send', then queue "
                        "again.",
                        locked=True,
                    )
                    self.problem_banner.say(
                        BannerReason.QUEUE_FILE, f"{problem.sentence} {problem.fix}"
                    )
                raise QueueNotWritten(problem) from exc
        self.problem_banner.clear(BannerReason.QUEUE_FILE)
        batch = queued.batch
        self._session_batches.add(batch.id)
        # Queued and committed: a failure to show it now must not make it look unqueued (the
        # grid would keep the rows, and queueing them again would send them twice).
        try:
            if batch.total:
                shown = self.queue_model.fetch_new()  # the batch's ids, read off the UI thread
                self._refresh_counts()
                if shown is not None:
                    await asyncio.shield(shown)
                plural = "s" if batch.total != 1 else ""
                self.status_bar.showMessage(f"Queued {batch.total:,} lead{plural}.", 4000)
            self._refresh_batches()
        except Exception:
            log.exception("showing batch %s failed; its leads are queued", batch.id)
        return queued

    @_reads_queue
    def _load_queue(self) -> None:
        """The profile's leads: their ids are read in a worker, the rows shown a page at a time;
        the counts and batch bars come from the outbox's per-batch counts."""
        profile = self.desk.profile
        self._batch_names.clear()
        self.queue_model.set_profile(None if profile is None else profile.name)
        self._refresh_counts()
        self._refresh_batches()
        self._data_version = self.desk.outbox.data_version()
        self._watch_timer.start()

    def _find_lead_ids(self, query: LeadQuery, after: int) -> Any:
        """In a worker: the ids the queue view shows, on a connection of the worker's own."""
        if query.profile is None:
            return array("q")
        with Outbox(self.desk.paths.outbox) as outbox:
            return outbox.lead_ids(query, after=after)

    def _find_sort_keys(self, query: LeadQuery, order: Order, after: int) -> Any:
        """In a worker: the sort keys of the rows the queue view shows sorted by status or by
        last change (in that order and by id), on a connection of the worker's own."""
        if query.profile is None:
            return array("q"), array("q")
        with Outbox(self.desk.paths.outbox) as outbox:
            return outbox.sort_keys(query, order, after=after)

    def _first_lead_ids(self, query: LeadQuery) -> Any:
        """In a worker: a search's first results, from the outbox's indexes."""
        if query.profile is None:
            return array("q")
        with Outbox(self.desk.paths.outbox) as outbox:
            return outbox.first_ids(query)

    def _scan_lead_ids(self, query: LeadQuery, stale: Callable[[], bool]) -> Any:
        """In a worker: everything a search finds (None once a newer query made it stop)."""
        if query.profile is None:
            return array("q")
        with Outbox(self.desk.paths.outbox) as outbox:
            try:
                return outbox.lead_ids(query, stop=stale)
            except SearchStopped:
                return None

    async def _index_backlog(self) -> None:
        """Leads queued before the search's indexes are indexed in a worker, a short write at a
        time with pauses between (sending goes on; the search scans them meanwhile)."""
        try:
            left = self.desk.outbox.search_backlog()
            if not left:
                return
            log.info("Indexing %s leads for the queue's search", left)
            started = time.monotonic()
            while left and not self._closing:
                left = await self.tasks.in_worker(self._index_chunk)
                await asyncio.sleep(BACKLOG_PAUSE)
        except _STORAGE_ERRORS as exc:  # the search scans the leads left; the next start goes on
            log.warning("Indexing the queue's leads for the search stopped: %s", exc)
            return
        if not left:
            log.info("The queue's search index is complete (%.0f s)", time.monotonic() - started)

    def _index_chunk(self) -> int:
        with Outbox(self.desk.paths.outbox) as outbox:
            return outbox.index_backlog()

    def _find_top_id(self, profile: str | None) -> int:
        """In a worker: the profile's newest lead id as a queue query starts (fetch_new looks
        above it, so an empty search result does not make every watch tick read the queue)."""
        if profile is None:
            return 0
        with Outbox(self.desk.paths.outbox) as outbox:
            return outbox.last_lead_id(profile)

    def _read_leads(self, ids: Sequence[int]) -> dict[int, Lead]:
        """A page of the queue view (asked for while Qt paints): a SQLite error shows the
        queue-file banner once the paint is over and the rows stay blank until the next read."""
        try:
            return self.desk.outbox.leads_by_id(ids)
        except _STORAGE_ERRORS as exc:
            QTimer.singleShot(0, lambda e=exc: self._storage_failed(e, "reading the queue view"))
            return {}

    def _run_query(self, job: Callable[[], Any], done: Callable[[Any], None]) -> Any:
        generation = self.queue_model.generation  # the query (or the fetch) this job is for

        async def run() -> None:
            try:
                result = await self.tasks.in_worker(job)
            except Exception as exc:  # any failure: the model must not wait for it for good
                if isinstance(exc, _STORAGE_ERRORS):
                    self._storage_failed(exc, "searching the queue")
                else:
                    log.exception("The queue view's query failed")
                if not self._closing:
                    self._data_version = None  # what it was to show is read again next time
                    self.queue_model.query_failed(generation)
                return
            if not self._closing:
                done(result)

        return self.tasks.spawn(run(), name="queue query")

    def _batch_name(self, batch_id: int) -> str:
        name = self._batch_names.get(batch_id)
        if name is None:
            try:
                batch = self.desk.outbox.batch(batch_id)
            except _STORAGE_ERRORS:
                return f"Batch {batch_id}"  # said by the banner of the page read beside it
            name = (
                f"Batch {batch_id}"
                if batch is None
                else (f"{batch.source} ({clock_text(batch.created_at)})")
            )
            self._batch_names[batch_id] = name
        return name

    @_reads_queue
    def _watch_outbox(self) -> None:
        """Another connection committed: new leads appear and the figures follow."""
        if self._closing or self.desk.profile is None:
            return
        outbox, profile = self.desk.outbox, self.desk.profile.name
        version = outbox.data_version()
        if version == self._data_version:
            return
        counts = outbox.counts(profile)  # a read that fails leaves the change unseen: read again
        dispatcher = self.desk.dispatcher
        if dispatcher is None or dispatcher.busy_with is not None:
            # Another process sends this queue (or nothing here does): what it records reaches
            # this window only through the file, so the rows are read again as painted.
            self.queue_model.reread()
        self.queue_model.fetch_new()  # a fetch that fails forgets the version (``_run_query``)
        self.status_bar.show_counts(counts.as_dict())
        self._refresh_batches()
        self._data_version = version
        self._storage_said = ""

    def _target_names(self, lead: Lead) -> str:
        profile = self.desk.profile
        t = lead.target
        campaign = allocation = None
        if profile is not None:
            cached = profile.campaigns.get(str(t.template_id))
            campaign = dict(cached.items).get(t.campaign_id) if cached else None
            cached = profile.allocations.get(str(t.campaign_id))
            allocation = dict(cached.items).get(t.allocation_id) if cached else None
        return f"{campaign or f'#{t.campaign_id}'} / {allocation or f'#{t.allocation_id}'}"

    # -- events from the dispatcher ------------------------------------------------------------

    def _on_event(self, event: DeskEvent) -> None:
        if self._closing:
            return
        if isinstance(event, SendingStopped):
            self._restart = (event.error, time.monotonic() + event.restart_in)
            self.problem_banner.say(BannerReason.SENDING_STOPPED, event.message)
            if event.error:
                self._restart_timer.start()
            return
        if isinstance(event, SendingRestarted):
            self._restart_timer.stop()
            self.problem_banner.clear(BannerReason.SENDING_STOPPED)
            self.status_bar.showMessage("Sending started again.", 6000)
            return
        if isinstance(event, LeadChanged):
            self._pending_ids.add(event.lead_id)
            if not self._flush_timer.isActive():
                self._flush_timer.start()
        elif isinstance(event, LeadsReloaded):
            self._pending_batches |= set(event.batch_ids)
            if not self._flush_timer.isActive():
                self._flush_timer.start()
        elif isinstance(event, QueueFigures):
            self._show_figures(event)
        elif isinstance(event, BatchFinished):
            self._batch_finished(event)
        elif isinstance(event, SetupStopped):
            self._stopped[event.batch_id] = event
            self._show_stopped()

    def _count_down_restart(self) -> None:
        """The "Sending stopped" banner counts down to the dispatcher's start again."""
        if self._closing or self.problem_banner.reason is not BannerReason.SENDING_STOPPED:
            self._restart_timer.stop()
            return
        error, at = self._restart
        left = at - time.monotonic()
        self.problem_banner.say(BannerReason.SENDING_STOPPED, sending_stopped_text(error, left))
        if left <= 0:
            self._restart_timer.stop()

    # -- a batch held for a set-up mistake ---------------------------------------------------

    @_reads_queue
    def _show_stopped(self) -> None:
        """The banner of the newest held batch (the others come after it is dealt with)."""
        if not self._stopped:
            self.setup_banner.clear(BannerReason.SETUP_STOPPED)
            return
        batch_id = max(self._stopped)
        stopped = self._stopped[batch_id]
        batch = self.desk.outbox.batch(batch_id)
        source = batch.source if batch is not None else f"Batch {batch_id}"
        others = len(self._stopped) - 1
        more = f" ({others} more batch{'es' if others != 1 else ''} held.)" if others else ""
        self.setup_banner.say(
            BannerReason.SETUP_STOPPED,
            f"{source}: {stopped.sentence}\n{stopped.fix}{more}",
            [
                ("Fix fields…", lambda: self._fix_fields(batch_id)),
                ("Send anyway", lambda: self._send_anyway(batch_id)),
                ("Take back to the grid", lambda: self._take_back(batch_id)),
            ],
        )

    @_reads_queue
    def _fix_fields(self, batch_id: int) -> None:
        batch = self.desk.outbox.batch(batch_id)
        if batch is not None:
            self.edit_fields_of(batch.target.template_id)

    @_writes_queue
    def _send_anyway(self, batch_id: int) -> None:
        dispatcher = self.desk.dispatcher
        if dispatcher is None:
            return
        count = dispatcher.send_anyway(batch_id)
        self._stopped.pop(batch_id, None)
        self._show_stopped()
        self.status_bar.showMessage(f"Sending {count:,} held leads as they are.", 6000)

    @_writes_queue
    def _take_back(self, batch_id: int) -> None:
        """The batch's held leads, and the ones the PBX refused for the same mistake, go into
        the grid to be mapped again and queued as new leads; the originals are cancelled for
        good (``Outbox.take_back``: Retry leaves them), so only the new ones can be sent.

        Each keeps its external id: a PBX that took one after all refuses it a second time."""
        dispatcher = self.desk.dispatcher
        stopped = self._stopped.get(batch_id)
        if dispatcher is None or stopped is None:
            return
        if self.grid.busy:
            self.status_bar.showMessage(f"Wait a moment: {self.grid.busy}", 4000)
            return
        outbox = self.desk.outbox
        chosen = outbox.leads(LeadQuery(batch_id=batch_id, states=frozenset({State.HELD})))
        if stopped.code is not None:
            refused = outbox.leads(LeadQuery(batch_id=batch_id, states=frozenset({State.REJECTED})))
            chosen += [lead for lead in refused if lead.last_code == stopped.code]
        self._stopped.pop(batch_id, None)
        self._show_stopped()
        # Into the grid only once they are cancelled for good: a write that waits for the file
        # and is then lost (a quit, a crash) leaves them held, never in two places.
        dispatcher.take_back(
            [lead.id for lead in chosen], lambda taken: self._to_grid(batch_id, taken)
        )

    @_reads_queue
    def _to_grid(self, batch_id: int, taken: list[Lead]) -> None:
        if not taken:
            self.status_bar.showMessage("No leads of that batch are left to take back.", 6000)
            return
        if self.grid.busy:  # it got busy while the write waited for the file
            QTimer.singleShot(200, lambda: self._to_grid(batch_id, taken))
            return
        taken = sorted(
            taken, key=lambda lead: (lead.row if lead.row is not None else lead.id, lead.id)
        )
        keys: dict[str, None] = {}
        for lead in taken:
            keys.update(dict.fromkeys(k for k in lead.fields if k != EXTERNAL_ID_FIELD))
        header = [*keys, EXTERNAL_ID_FIELD]
        rows = [[lead.fields.get(k, "") for k in keys] + [lead.external_id] for lead in taken]
        batch = self.desk.outbox.batch(batch_id)
        source = batch.source if batch is not None else f"batch {batch_id}"
        self.entry_tabs.setCurrentWidget(self.grid)
        self.grid.load_table(Table([header, *rows]), f"Taken back from {source}")
        self.status_bar.showMessage(
            f"{len(taken):,} leads taken back to the grid: choose the field each column is sent "
            "as, then queue them again.",
            10000,
        )

    @_reads_queue
    def _flush_changes(self) -> None:
        outbox = self.desk.outbox
        ids, batches = sorted(self._pending_ids), sorted(self._pending_batches)
        leads = list(outbox.leads_by_id(ids).values())  # a read error keeps them pending
        self._pending_ids.difference_update(ids)
        self._pending_batches.difference_update(batches)
        if leads:
            self.queue_model.update(leads)
        if batches:  # a bulk control: the rows read again (the query too, when filtered)
            self.queue_model.reload()
        if leads or batches:
            self._refresh_counts()

    def _show_figures(self, figures: QueueFigures) -> None:
        for view in self._figure_views:
            view.show_figures(figures)
        self._show_attention(figures)
        self._refresh_batches()

    def _show_attention(self, figures: QueueFigures) -> None:
        """The banner while the whole queue is paused for a person (key, address, TLS)."""
        if figures.needs_attention:
            self.problem_banner.say(
                BannerReason.QUEUE_NEEDS_ATTENTION,
                f"Sending is paused: {figures.paused_reason} {figures.fix}".strip(),
                [("Connection settings…", self.edit_connection)],
            )
        else:
            self.problem_banner.clear(BannerReason.QUEUE_NEEDS_ATTENTION)

    @_reads_queue
    def _refresh_counts(self) -> None:
        profile = self.desk.profile
        if profile is not None:
            self.status_bar.show_counts(self.desk.outbox.counts(profile.name).as_dict())

    @_reads_queue
    def _refresh_batches(self) -> None:
        profile = self.desk.profile
        if profile is None:
            self.queue_view.batches.show_batches([])
            return
        outbox = self.desk.outbox
        recent = outbox.batches(profile.name, limit=20)
        counts = outbox.batch_counts(batch.id for batch in recent)
        shown = []
        for batch in recent:
            if counts[batch.id].open or batch.id in self._session_batches:
                shown.append((batch, counts[batch.id]))
            if len(shown) >= 4:
                break
        self.queue_view.batches.show_batches(shown)

    @_reads_queue
    def _batch_finished(self, event: BatchFinished) -> None:
        # Announced once per finish by the dispatcher (again after a retry or a resend).
        counts = event.counts
        batch = self.desk.outbox.batch(event.batch_id)
        source = batch.source if batch is not None else "Batch"
        problems = counts.get("rejected", 0) + counts.get("duplicate", 0) + counts.get("failed", 0)
        text = f"{source}: {counts.get('delivered', 0):,} of {sum(counts.values()):,} delivered"
        needs = "needs" if problems == 1 else "need"
        text += f", {problems:,} {needs} a person." if problems else "."
        self.status_bar.showMessage(text, 10000)
        if batch is not None and batch.total > 1:
            QApplication.alert(self)
            if QSystemTrayIcon.isSystemTrayAvailable():
                if self._tray is None:
                    self._tray = QSystemTrayIcon(self.windowIcon(), self)
                self._tray.show()
                self._tray.showMessage("Batch finished", text)

    # -- queue controls ------------------------------------------------------------------------

    def _pause_toggled(self, paused: bool) -> None:
        dispatcher = self.desk.dispatcher
        if dispatcher is None:
            return
        if paused:
            dispatcher.pause("Paused by you")
        else:
            dispatcher.resume()

    def _toggle_pause(self) -> None:
        dispatcher = self.desk.dispatcher
        if dispatcher is not None:
            self._pause_toggled(dispatcher.paused_reason is None)

    @_writes_queue
    def _control(self, control: Callable[[Dispatcher, list[int]], int], ids: list[int]) -> None:
        dispatcher = self.desk.dispatcher
        if dispatcher is None or not ids:
            if not ids:
                self.status_bar.showMessage("Select leads in the queue first.", 4000)
            return
        changed = control(dispatcher, ids)
        if changed:
            said = f"{changed:,} lead{'s' if changed != 1 else ''} changed."
        else:
            said = _UNCHANGED.get(getattr(control, "__name__", ""), "No selected lead changed.")
        self.status_bar.showMessage(said, 6000)

    @_reads_queue
    def _show_details(self, lead_id: int) -> None:
        lead = self.desk.outbox.get(lead_id)
        if lead is None:
            return
        batch = self._batch_name(lead.batch_id)
        dialog = LeadDetails(lead, self.desk.outbox.attempts(lead_id), self, batch)
        self.details_dialog = dialog
        dialog.open()

    def _shown_query(self) -> LeadQuery:
        """The leads the queue view shows now (its filter and search), for export."""
        profile = self.desk.profile
        return LeadQuery(
            profile=profile.name if profile is not None else None,
            states=self.queue_model.states,
            search=self.queue_model.search,  # as the view searched: the same text, the same rule
        )

    def export_results(self, kind: str) -> None:
        if self.desk.profile is None:
            return
        suffix = "xlsx" if kind == "xlsx" else "csv"
        stamp = time.strftime("%Y-%m-%d-%H%M")
        dialog = QFileDialog(self, "Export results")
        dialog.setObjectName("exportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix(suffix)
        dialog.setNameFilter("Excel workbook (*.xlsx)" if suffix == "xlsx" else "CSV file (*.csv)")
        dialog.selectFile(f"noojee-desk-results-{stamp}.{suffix}")
        dialog.fileSelected.connect(
            lambda path: self.tasks.spawn(self._export(path, suffix), name="export")
        )
        self.export_dialog = dialog
        dialog.open()

    async def _export(self, path: str, kind: str) -> None:
        query = self._shown_query()
        outbox_path = self.desk.paths.outbox

        progress = self.export_progress
        if progress.isVisible():
            self.status_bar.showMessage("An export is running; wait for it or cancel it.", 4000)
            return

        def write() -> int:
            with Outbox(outbox_path) as outbox:
                if kind == "xlsx":
                    return export.write_xlsx(outbox, path, query, progress.tell)
                return export.write_csv(outbox, path, query, progress.tell)

        self.status_bar.showMessage("Exporting…")
        progress.begin()
        try:
            count = await self.tasks.in_worker(write)
        except export.ExportCancelled:
            self.status_bar.showMessage("Export cancelled; no file was written.", 6000)
            return
        except _STORAGE_ERRORS as exc:  # the queue file could not be read: no file written
            self._storage_failed(exc, "exporting the results")
            self.status_bar.clearMessage()
            return
        except OSError as exc:
            self.problem_banner.say(
                BannerReason.EXPORT_FAILED,
                f"The results could not be written to {path}: {exc.strerror or exc}. Choose "
                "another folder or free some disk space.",
            )
            self.status_bar.clearMessage()
            return
        finally:
            progress.end()
        self.status_bar.showMessage(f"Exported {count:,} leads to {path}.", 8000)

    @_reads_queue
    def copy_failed_rows(self) -> None:
        """Rejected and failed leads as TSV: fix them in a spreadsheet, paste them back."""
        profile = self.desk.profile
        if profile is None:
            return
        query = LeadQuery(profile=profile.name, states=frozenset({State.REJECTED, State.FAILED}))
        header, body = export.rows(self.desk.outbox, query)
        lines = list(body)
        if not lines:
            self.status_bar.showMessage("No rejected or failed leads to copy.", 4000)
            return
        QApplication.clipboard().setText(to_tsv([header, *lines]))
        self.status_bar.showMessage(
            f"Copied {len(lines):,} rows with their reasons; paste them into a spreadsheet.", 6000
        )

    # -- geometry and closing ----------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self._geometry.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter = self._geometry.value("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        self._fit_to_screen()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._fitted:
            self._fitted = True
            self._fit_to_screen()  # now with the frame the platform gives the window
            # Once more when the window system has settled it (X11 answers resizes late), and
            # whenever the window moves to another screen.
            QTimer.singleShot(200, self._fit_to_screen)
            handle = self.windowHandle()
            if handle is not None:
                handle.screenChanged.connect(lambda _screen: self._fit_to_screen())

    def _fit_to_screen(self) -> None:
        """Never larger than the screen's free area (a saved size from a bigger monitor, the
        default on a small or scaled screen), and on it."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        free = screen.availableGeometry()
        frame = self.frameGeometry()
        extra_w = max(0, frame.width() - self.width())
        extra_h = max(0, frame.height() - self.height())
        width = min(self.width(), free.width() - extra_w)
        height = min(self.height(), free.height() - extra_h)
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        x = min(max(self.x(), free.left()), free.right() + 1 - width - extra_w)
        y = min(max(self.y(), free.top()), free.bottom() + 1 - height - extra_h)
        if (x, y) != (self.x(), self.y()):
            self.move(max(x, free.left()), max(y, free.top()))

    def closeEvent(self, event: QCloseEvent) -> None:
        profile = self.desk.profile
        open_leads = 0
        if profile is not None and not self._close_confirmed:
            try:
                open_leads = self.desk.outbox.counts(profile.name).open
            except _STORAGE_ERRORS as exc:  # whatever is queued stays in the file: close
                log.warning("counting the open leads at close failed: %s", exc)
        if open_leads:
            event.ignore()
            box = QMessageBox(
                QMessageBox.Icon.Information,
                "Leads still queued",
                (
                    f"{open_leads:,} leads are still waiting to be sent. They stay safely "
                    "queued on this computer and are sent the next time Noojee Desk starts."
                    if open_leads != 1
                    else "1 lead is still waiting to be sent. It stays safely queued on this "
                    "computer and is sent the next time Noojee Desk starts."
                ),
                QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel,
                self,
            )
            box.setObjectName("closeWithQueued")
            box.button(QMessageBox.StandardButton.Close).setText("Close anyway")
            box.finished.connect(self._close_answer)
            self.close_box = box
            box.open()
            return
        self._geometry.setValue("geometry", self.saveGeometry())
        self._geometry.setValue("splitter", self.splitter.saveState())
        self._geometry.sync()
        super().closeEvent(event)
        self.closed.emit()

    def _close_answer(self, result: int) -> None:
        if result == QMessageBox.StandardButton.Close:
            self._close_confirmed = True
            self.close()

    async def shutdown(self) -> None:
        """Stop sending and release everything; unsent leads stay queued for the next start."""
        self._close_confirmed = True
        self._closing = True  # events of the stopping dispatcher are no longer shown
        await self.tasks.cancel_all()
        await self.desk.close()
        self._flush_timer.stop()
        self._watch_timer.stop()
