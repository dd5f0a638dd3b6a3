"""Help ▸ About (the version, the managed settings in use, where the data lives, diagnostics)
and Help ▸ Keyboard shortcuts (built from the window's actions, so it cannot drift)."""

from __future__ import annotations

from html import escape

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from noojee_desk import APP_NAME, __version__
from noojee_desk.core import diagnostics
from noojee_desk.core.desk import Desk
from noojee_desk.core.profiles.managed import CHECKING_RULES
from noojee_desk.ui.managed_ui import NOTE, show_locked
from noojee_desk.ui.tasks import Tasks

RULE_NAMES = {"region": "Region", "phone_format": "Phone format", "strict_ranges": "Strict ranges"}


def qt_versions() -> str:
    return f"{qVersion()} (PySide6 {pyside_version})"


class AboutDialog(QDialog):
    def __init__(self, desk: Desk, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle(f"About {APP_NAME}")
        self.setMinimumWidth(560)
        self._desk, self._tasks = desk, tasks
        title = QLabel(
            f"<b>{APP_NAME}</b> {__version__}<br>Puts leads into Noojee PBX dialler campaigns."
        )
        managed = desk.managed
        if managed.problem:
            source = f"{managed.path} — damaged, ignored"
        elif managed.path is not None:
            source = str(managed.path)
        else:
            source = "none (this computer's own settings only)"
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}

        def row(caption: str, key: str, text: str) -> QLabel:
            label = QLabel(escape(text))
            label.setObjectName(f"about_{key}")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.values[key] = label
            form.addRow(caption, label)
            return label

        row("Managed settings", "managed", source)
        row("Data", "data", str(desk.paths.data))
        row("Settings", "settings", str(desk.paths.config))
        row("Logs", "logs", str(desk.paths.logs))
        row("Qt", "qt", qt_versions())
        for rule in CHECKING_RULES:
            if not hasattr(desk.settings, rule):
                continue
            value = getattr(desk.settings, rule)
            shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
            locked = desk.is_locked(rule)
            label = row(RULE_NAMES[rule], rule, f"{shown} — {NOTE.lower()}" if locked else shown)
            if locked:
                show_locked(label)
        self.copy = QPushButton("&Copy diagnostics")
        self.copy.setObjectName("copyDiagnostics")
        self.copy.setToolTip("Version, system, settings, queue and the last log lines; no key")
        self.copy.clicked.connect(lambda: self._tasks.spawn(self.copy_diagnostics()))
        self.status = QLabel("")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(buttons)

    async def copy_diagnostics(self) -> str:
        text = await diagnostics.gather(self._desk, qt=qt_versions())
        QApplication.clipboard().setText(text)
        self.status.setText("Copied: paste it into your support ticket.")
        return text


def action_title(act: QAction) -> str:
    """An action's text without its mnemonic and trailing dots ("&Open leads file…" ->
    "Open leads file")."""
    return act.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…. ")


def keys_text(act: QAction) -> str:
    """The action's keys as this platform writes them ("Ctrl+O", "Ctrl+Return or Ctrl+Enter")."""
    return " or ".join(
        key.toString(QKeySequence.SequenceFormat.NativeText) for key in act.shortcuts()
    )


def shortcut_tooltip(act: QAction) -> None:
    """The action's tooltip names its key: "Open leads file (Ctrl+O)"."""
    keys = keys_text(act)
    act.setToolTip(f"{action_title(act)} ({keys})" if keys else action_title(act))


class ShortcutsDialog(QDialog):
    """Help ▸ Keyboard shortcuts: every action with its keys, by menu."""

    def __init__(
        self, sections: list[tuple[str, list[QAction]]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        rows = [
            (section, action_title(act), keys_text(act))
            for section, acts in sections
            for act in acts
            if act.isVisible()
        ]
        rows += [
            ("Moving around", "To the next or the previous field", "Tab, Shift+Tab"),
            ("Moving around", "The Template, Campaign or Allocation box", "Alt+T, Alt+M, Alt+L"),
            ("Moving around", "Key in a lead or Paste many", "Alt+1, Alt+2"),
            ("Paste many", "Move between cells", "Arrows, Tab, Home, End"),
            ("Paste many", "Edit the current cell", "F2, or start typing; Enter keeps it"),
            ("Paste many", "Paste rows, or into the selected cells", "Ctrl+V"),
            ("Paste many", "Empty the selected cells", "Del"),
            ("Queue", "Search the queue", "Ctrl+F"),
            ("Queue", "From the search to the leads found", "Down"),
        ]
        table = QTableWidget(len(rows), 3)
        table.setObjectName("shortcutsTable")
        table.setAccessibleName("Keyboard shortcuts")
        table.setHorizontalHeaderLabels(["Where", "What", "Keys"])
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                table.setItem(row, column, QTableWidgetItem(text))
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table = table
        self.rows = rows
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        screen = self.screen().availableGeometry()
        self.resize(min(620, screen.width() - 40), min(560, screen.height() - 60))
