"""The batch grid's actions, the bar above the table and the line below it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QToolButton,
    QWidget,
)

from noojee_desk.core.leads.validate import ERROR
from noojee_desk.ui.theme import MARKS


@dataclass(frozen=True, slots=True)
class GridActions:
    undo: QAction
    redo: QAction
    open: QAction
    paste: QAction
    remove: QAction


def make_actions(owner: QWidget, undo_stack: QUndoStack) -> GridActions:
    """The grid's actions; the ones with a shortcut work while the focus is inside ``owner``."""
    undo = undo_stack.createUndoAction(owner, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    undo.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    redo = undo_stack.createRedoAction(owner, "&Redo")
    redo_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
    for extra in ("Ctrl+Shift+Z", "Ctrl+Y"):
        if QKeySequence(extra) not in redo_keys:
            redo_keys.append(QKeySequence(extra))
    redo.setShortcuts(redo_keys)
    redo.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    owner.addAction(undo)
    owner.addAction(redo)
    open_file = QAction("&Open leads file…", owner)
    open_file.setObjectName("actOpenLeadsFile")  # Ctrl+O is the window's File ▸ Open
    paste = QAction("&Paste leads", owner)
    remove = QAction("&Remove selected rows", owner)
    remove.setObjectName("actRemoveRows")
    remove.setShortcut(QKeySequence("Ctrl+-"))
    remove.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    owner.addAction(remove)
    return GridActions(undo, redo, open_file, paste, remove)


def _tool(action: QAction, name: str) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setObjectName(name)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


class GridToolbar(QWidget):
    """Open, undo, redo; the header and filter switches; Clear grid."""

    def __init__(self, actions: GridActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gridToolbar")
        self.open_button = _tool(actions.open, "openFile")
        self.open_button.setText("Open file…")
        self.undo_button = _tool(actions.undo, "undoButton")
        self.redo_button = _tool(actions.redo, "redoButton")
        self.header_box = QCheckBox("First row is a &header")
        self.header_box.setObjectName("firstRowHeader")
        self.filter_box = QCheckBox("Only rows with &problems")
        self.filter_box.setObjectName("problemsOnly")
        self.clear_button = QPushButton("Clear grid")
        self.clear_button.setObjectName("clearGrid")
        top = QHBoxLayout(self)
        top.setContentsMargins(0, 0, 0, 0)
        for widget in (self.open_button, self.undo_button, self.redo_button):
            top.addWidget(widget)
        top.addSpacing(12)
        top.addWidget(self.header_box)
        top.addWidget(self.filter_box)
        top.addStretch(1)
        top.addWidget(self.clear_button)

    def update_state(
        self,
        *,
        has_rows: bool,
        busy: bool,
        pending: bool,
        header: bool,
        filtered: bool,
        marked: int,
    ) -> None:
        """``header``: the grid has a header row; ``marked``: rows with problems."""
        self.header_box.blockSignals(True)
        self.header_box.setChecked(header)
        self.header_box.blockSignals(False)
        self.header_box.setEnabled(has_rows and not busy and not pending)
        self.filter_box.blockSignals(True)
        self.filter_box.setChecked(filtered)
        self.filter_box.blockSignals(False)
        self.filter_box.setText(
            f"Only rows with &problems ({marked:,})" if marked else "Only rows with &problems"
        )
        self.clear_button.setEnabled(has_rows and not busy)


class GridFooter(QWidget):
    """The counts, the status line and the Queue button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gridFooter")
        self.status = QLabel()
        self.status.setObjectName("gridStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.counts = QLabel()
        self.counts.setObjectName("gridCounts")
        self.queue_button = QPushButton("Queue leads")
        self.queue_button.setObjectName("queueLeads")
        bottom = QHBoxLayout(self)
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.counts)
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.queue_button)

    def say(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {MARKS[ERROR]};" if error else "")

    def show_step(self, text: str, *, plain: bool = False) -> None:
        """What a running load does now; ``plain`` takes off the colour of an error shown before."""
        self.status.setText(text)
        if plain:
            self.status.setStyleSheet("")

    def update_counts(
        self,
        summary: tuple[int, int, int, int],
        *,
        total: int,
        checked: bool,
        pending: int,
        checking: bool,
        ready: bool,
        busy: bool,
    ) -> None:
        """``summary``: the model's; ``checked``: a template checks the rows; ``ready``: a
        target is chosen; ``pending``: rows handed to the queue and not stored yet."""
        clean, warned, blocked, _unchecked = summary
        count = clean + warned
        if total:
            parts = [f"{total:,} rows"]
            if checked:
                parts += [f"{clean:,} ready", f"{warned:,} with warnings", f"{blocked:,} blocked"]
            if pending:
                parts.append(f"{pending:,} being queued")
            self.counts.setText(" · ".join(parts) + ("  (checking…)" if checking else ""))
        else:
            self.counts.setText("")
        self.queue_button.setText(f"Queue {count:,} leads" if count else "Queue leads")
        self.queue_button.setEnabled(
            ready and count > 0 and not busy and not checking and not pending
        )
        if not ready:
            self.queue_button.setToolTip("Choose a template, campaign and allocation first.")
        elif checking:
            self.queue_button.setToolTip("The rows are being checked…")
        else:
            self.queue_button.setToolTip(
                f"{count:,} leads can be queued; {blocked:,} rows need fixing first."
            )


def day_text(when: float) -> str:
    """'2 Dec 2026' in local time."""
    local = time.localtime(when)
    return f"{local.tm_mday} {time.strftime('%b %Y', local)}"


def delivered_when(times: Sequence[float | None]) -> str:
    """'on 2 Dec 2026', or 'between 1 Dec 2026 and 2 Dec 2026' for deliveries on several days."""
    stamps = sorted(t for t in times if t)
    if not stamps:
        return ""
    first, last = day_text(stamps[0]), day_text(stamps[-1])
    return f"on {first}" if first == last else f"between {first} and {last}"


def queue_summary(
    parent: QWidget,
    clean: int,
    warned: int,
    blocked: int,
    delivered: Sequence[float | None] = (),
) -> QMessageBox:
    """The question before queueing: how many rows go, with warnings, and stay blocked. Its
    accept button is the child named ``confirmQueue``.

    ``delivered``: when each ready row whose content was delivered to the same target before
    was delivered; then ``confirmQueue`` skips those rows and ``sendAgain`` queues them too."""
    count = clean + warned
    again = len(delivered)
    fresh = count - again
    box = QMessageBox(parent)
    box.setObjectName("queueSummary")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Queue leads")
    box.setText(f"Queue {count:,} leads?")
    lines = [f"• {clean:,} valid"]
    if warned:
        lines.append(f"• {warned:,} with warnings (sent as they are; see the amber cells)")
    if blocked:
        lines.append(f"• {blocked:,} blocked by errors stay in the grid to be fixed")
    if again:
        rows = "1 row was" if again == 1 else f"{again:,} rows were"
        when = delivered_when(delivered)
        lines.append(
            f"\n{rows} already delivered to this campaign{' ' + when if when else ''}: "
            "skip them, or send them again?"
        )
    box.setInformativeText("\n".join(lines))
    if again:
        label = f"Skip them, queue {fresh:,}" if fresh else "Skip them"
        accept = box.addButton(label, QMessageBox.ButtonRole.AcceptRole)
        resend = box.addButton(
            f"Send them again, queue {count:,}", QMessageBox.ButtonRole.AcceptRole
        )
        resend.setObjectName("sendAgain")
    else:
        accept = box.addButton(f"Queue {count:,} leads", QMessageBox.ButtonRole.AcceptRole)
    accept.setObjectName("confirmQueue")
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(accept)
    return box
