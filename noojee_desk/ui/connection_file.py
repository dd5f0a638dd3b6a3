"""Opening a connection file: what it holds, shown before anything is kept; only the key asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, Qt, Signal
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from noojee_desk.core.desk import Desk
from noojee_desk.core.profiles import connection_file
from noojee_desk.core.profiles.managed import ConnectionSpec
from noojee_desk.core.profiles.settings import Profile
from noojee_desk.ui.tasks import Tasks
from noojee_desk.ui.theme import style


class ImportConnectionDialog(QDialog):
    """Shows a connection file's contents; Save keeps the connection and the key (keyring).

    Emits ``saved(profile name, warning)`` as the connection dialog does."""

    saved = Signal(str, str)

    def __init__(
        self, desk: Desk, tasks: Tasks, spec: ConnectionSpec, source: str, parent: QWidget | None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("importConnectionDialog")
        self.setWindowTitle("Add a connection from a file")
        self.setMinimumWidth(520)
        self._desk, self._tasks, self.spec = desk, tasks, spec
        form = QFormLayout()
        self.shown: dict[str, QLabel] = {}

        def row(caption: str, key: str, value: object) -> None:
            label = QLabel(str(value) if value not in (None, "") else "—")
            label.setObjectName(f"import_{key}")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.shown[key] = label
            form.addRow(caption, label)

        row("Name", "name", spec.name)
        row("Server", "server_url", spec.server_url)
        row("Time zone", "timezone", spec.timezone)
        row("CA file", "ca_bundle", spec.ca_bundle)
        picks = [spec.template_id, spec.campaign_id, spec.allocation_id]
        shown = " / ".join("—" if p is None else f"#{p}" for p in picks)
        row("Template / campaign / allocation", "defaults", shown)
        self.key = QLineEdit()
        self.key.setObjectName("importApiKey")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setAccessibleName("API key")
        self.key.setPlaceholderText("the key your administrator gave you")
        show = QCheckBox("Show")
        show.toggled.connect(
            lambda on: self.key.setEchoMode(
                QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
            )
        )
        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(show)
        caption = QLabel("API &key")
        caption.setBuddy(self.key)
        form.addRow(caption, key_row)

        intro = QLabel(f"The file {source} describes this connection. It holds no key.")
        intro.setWordWrap(True)
        existing = desk.settings.profile(spec.name)
        self.replaces = QLabel(
            f"A connection named '{spec.name}' exists on this computer: saving replaces its "
            f"address ({existing.server_url})."
            if existing is not None and existing.server_url != spec.server_url
            else ""
        )
        self.replaces.setWordWrap(True)
        self.replaces.setVisible(bool(self.replaces.text()))
        self.status = QLabel(
            "The key is stored in this computer's password store, never in a file."
        )
        self.status.setObjectName("importStatus")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons = buttons
        buttons.accepted.connect(
            lambda: self._tasks.spawn(self.save(), name="save imported connection")
        )
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.replaces)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.key.setFocus()

    async def save(self) -> bool:
        key = self.key.text().strip()
        if not key:
            self.status.setStyleSheet(style("error"))
            self.status.setText("Enter the API key.")
            return False
        profile = self.spec.profile()
        existing = self._desk.settings.profile(profile.name)
        if existing is not None and existing.server_url == profile.server_url:
            profile.templates = existing.templates  # the same server: its lists stay
            profile.campaigns, profile.allocations = existing.campaigns, existing.allocations
        warning = await self._desk.save_profile(profile, key, session_only=False)
        self.saved.emit(profile.name, warning)
        self.accept()
        return True


FILTER = f"Noojee Desk connection (*{connection_file.SUFFIX})"


def dropped_connection_file(mime: QMimeData) -> str | None:
    """The connection file among dropped files, if one is (any other file is lead data)."""
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        path = url.toLocalFile()
        if path and Path(path).suffix.lower() == connection_file.SUFFIX:
            return path
    return None


def import_dialog(
    desk: Desk, tasks: Tasks, path: str, parent: QWidget
) -> ImportConnectionDialog | QMessageBox:
    """The dialog that adds the file's connection, or a box saying why the file is refused."""
    try:
        spec = connection_file.read(path)
    except connection_file.ConnectionFileRefused as exc:
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Connection file refused",
            f"{Path(path).name}: {exc} Nothing was changed.",
            QMessageBox.StandardButton.Close,
            parent,
        )
        box.setObjectName("connectionFileRefused")
        return box
    return ImportConnectionDialog(desk, tasks, spec, Path(path).name, parent)


def open_dialog(parent: QWidget, chosen: Callable[[str], None]) -> QFileDialog:
    dialog = QFileDialog(parent, "Add a connection from a file")
    dialog.setObjectName("importConnectionFile")
    dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    dialog.setNameFilters([FILTER, "All files (*)"])
    dialog.fileSelected.connect(chosen)
    dialog.open()
    return dialog


def export_dialog(
    parent: QWidget, profile: Profile, say: Callable[[str, int], None]
) -> QFileDialog:
    """Ask where to write ``profile``'s connection file, then write it (never the key)."""
    dialog = QFileDialog(parent, "Export connection")
    dialog.setObjectName("exportConnectionFile")
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setDefaultSuffix(connection_file.SUFFIX.lstrip("."))
    dialog.setNameFilter(FILTER)
    safe = "".join(c if c.isalnum() or c in "-_ " else "-" for c in profile.name).strip()
    dialog.selectFile(f"{safe or 'connection'}{connection_file.SUFFIX}")

    def write(path: str) -> None:
        try:
            written = connection_file.write(path, profile)
        except OSError as exc:
            say(f"The connection could not be written to {path}: {exc.strerror or exc}.", 10000)
            return
        say(f"Connection written to {written} (without the key).", 8000)

    dialog.fileSelected.connect(write)
    dialog.open()
    return dialog


class FileOpenWatcher(QObject):
    """A .noojee file opened from the Finder (macOS sends the app a FileOpen event): ``opened``.

    Installed on the application; every other event passes on untouched."""

    opened = Signal(str)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            path = event.file()
            if path and Path(path).suffix.lower() == connection_file.SUFFIX:
                self.opened.emit(path)
                return True
        return super().eventFilter(watched, event)
