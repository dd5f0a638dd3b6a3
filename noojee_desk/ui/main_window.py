"""The main window: connection, pickers, the lead form and batch grid, the queue, the status bar."""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from noojee_desk import APP_NAME, __version__
from noojee_desk.core.desk import Desk
from noojee_desk.core.settings import DEMO_PROFILE
from noojee_desk.ui.connect_dialog import ConnectDialog
from noojee_desk.ui.pickers import PickerBar
from noojee_desk.ui.tasks import Tasks
from noojee_desk.ui.welcome import WelcomePage

log = logging.getLogger(__name__)


class Banner(QFrame):
    """A coloured strip across the window for things a person must see (demo mode, problems)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton()
        self.action.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        self.hide()

    def say(self, text: str, kind: str = "info", action: str = "") -> None:
        colours = {
            "demo": ("#fff4ce", "#5c4400"),
            "info": ("#e7f0fb", "#12365c"),
            "error": ("#fde7e9", "#7a1620"),
        }
        back, fore = colours.get(kind, colours["info"])
        self.setStyleSheet(
            f"#{self.objectName()} {{ background: {back}; }} QLabel {{ color: {fore}; }}"
        )
        self.label.setText(text)
        self.action.setText(action)
        self.action.setVisible(bool(action))
        self.setAccessibleDescription(text)
        self.show()


class MainWindow(QMainWindow):
    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.desk = desk
        self.tasks = Tasks(on_error=self._task_failed)
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 780)
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
        self.problem_banner.action.clicked.connect(self.edit_connection)
        self.pickers = PickerBar(desk, self.tasks)
        self.pickers.blocked.connect(self._blocked)
        self.entry_tabs = QTabWidget()
        self.entry_tabs.setObjectName("entryTabs")
        self.queue_area = QWidget()
        self.queue_area.setObjectName("queueArea")
        QVBoxLayout(self.queue_area).setContentsMargins(0, 0, 0, 0)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("mainSplitter")
        splitter.addWidget(self.entry_tabs)
        splitter.addWidget(self.queue_area)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.splitter = splitter
        layout = QVBoxLayout(self.work)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.demo_banner)
        layout.addWidget(self.problem_banner)
        layout.addWidget(self.pickers)
        layout.addWidget(splitter, 1)

        self.connection_label = QLabel()
        self.connection_label.setObjectName("connectionStatus")
        self.statusBar().addWidget(self.connection_label, 1)
        self._build_actions()
        self._restore_geometry()

    # -- actions and menus -------------------------------------------------------------------

    def _build_actions(self) -> None:
        bar = QToolBar("Connection")
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

        def action(text: str, slot, shortcut: str | QKeySequence | None = None, name: str = ""):
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(shortcut)
            if name:
                act.setObjectName(name)
            act.triggered.connect(slot)
            return act

        self.act_new = action("&New connection…", self.new_connection, None, "actNewConnection")
        self.act_edit = action("&Edit connection…", self.edit_connection, None, "actEditConnection")
        self.act_forget = action("&Forget key", self.forget_key, None, "actForgetKey")
        self.act_demo = action("Open the &demo", lambda: self.tasks.spawn(self.open_demo()))
        self.act_quit = action("&Quit", self.close, QKeySequence.StandardKey.Quit, "actQuit")
        self.act_about = action("&About Noojee Desk", self.about)
        bar.addAction(self.act_edit)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.file_menu = file_menu
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        conn = menu.addMenu("&Connection")
        for act in (self.act_new, self.act_edit, self.act_forget, self.act_demo):
            conn.addAction(act)
        self.queue_menu = menu.addMenu("&Queue")
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.act_about)

    # -- start, profiles ---------------------------------------------------------------------

    async def start(self, *, demo: bool = False) -> None:
        if self.desk.store.load_warning:
            self.problem_banner.say(self.desk.store.load_warning, "error")
        if demo:
            await self.open_demo()
        elif self.desk.profile is not None:
            await self.open_profile(self.desk.profile.name)
        else:
            self.stack.setCurrentWidget(self.welcome)
            self.welcome.connect_button.setFocus()
        self._refresh_profiles()

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
        has = active is not None
        self.act_edit.setEnabled(has and not active.demo)
        self.act_forget.setEnabled(has and not active.demo)

    def _profile_picked(self, index: int) -> None:
        name = self.profile_box.itemData(index)
        if name and (self.desk.profile is None or name != self.desk.profile.name):
            self.tasks.spawn(self.open_profile(name), name="switch profile")

    async def open_demo(self) -> None:
        self.desk.ensure_demo_profile()
        self.desk.save_settings()
        await self.open_profile(DEMO_PROFILE)

    async def open_profile(self, name: str) -> None:
        opened = await self.desk.open(name)
        self.desk.save_settings()
        self._refresh_profiles()
        self.stack.setCurrentWidget(self.work)
        profile = opened.profile
        if profile.demo:
            self.setWindowTitle(f"{APP_NAME} — DEMO")
            self.demo_banner.say(
                "DEMO MODE: leads go to the built-in practice PBX on this computer, not to a real "
                "dialler. Use Connection ▸ New connection… for your PBX.",
                "demo",
            )
        else:
            self.setWindowTitle(f"{APP_NAME} — {profile.name}")
            self.demo_banner.hide()
        if opened.client is None:
            self.problem_banner.say(opened.problem, "error", "Enter key…")
            self.pickers.clear()
            self._set_connection("Not connected: " + opened.problem.split(".")[0])
            return
        self.problem_banner.hide()
        self._set_connection(
            "Demo PBX (built in)" if profile.demo else f"Connected to {profile.name}"
        )
        self.pickers.reload()

    def _set_connection(self, text: str) -> None:
        self.connection_label.setText(text)

    def _blocked(self, text: str) -> None:
        self.problem_banner.say(text, "error", "Connection settings…")

    def new_connection(self) -> None:
        self._open_dialog(None)

    def edit_connection(self) -> None:
        profile = self.desk.profile
        self._open_dialog(profile if profile is not None and not profile.demo else None)

    def _open_dialog(self, profile) -> None:
        dialog = ConnectDialog(self.desk, self.tasks, profile, self)
        dialog.saved.connect(self._connection_saved)
        dialog.open()
        self.connect_dialog = dialog

    def _connection_saved(self, name: str, warning: str) -> None:
        self.tasks.spawn(self._after_save(name, warning), name="open saved connection")

    async def _after_save(self, name: str, warning: str) -> None:
        await self.open_profile(name)
        if warning:
            self.problem_banner.say(warning, "error")

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
        p = self.desk.paths
        QMessageBox.about(
            self,
            f"About {APP_NAME}",
            f"<b>{APP_NAME}</b> {__version__}<br>Puts leads into Noojee PBX dialler campaigns."
            f"<br><br>Data: {p.data}<br>Settings: {p.config}<br>Logs: {p.logs}",
        )

    def _task_failed(self, text: str) -> None:
        self.problem_banner.say(text, "error")

    # -- geometry and closing ----------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self._geometry.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter = self._geometry.value("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._geometry.setValue("geometry", self.saveGeometry())
        self._geometry.setValue("splitter", self.splitter.saveState())
        self._geometry.sync()
        super().closeEvent(event)

    async def shutdown(self) -> None:
        await self.tasks.cancel_all()
        await self.desk.close()
