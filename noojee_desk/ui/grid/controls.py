"""The batch grid's actions, the bar above the table and the line below it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QResizeEvent, QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
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
    fix: QAction  # the suggested fix of the current cell (or of the chosen problem)
    fix_all: QAction
    queue: QAction
    problems: QAction  # to the problem list and back
    field: QAction  # choose the field the current column is sent as


def counted(count: int, noun: str, plural: str = "") -> str:
    """ "1 row", "2 rows", "1,204 leads": a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def keys_text(action: QAction) -> str:
    """The action's shortcuts as people read them: "Ctrl+. or Alt+Return"."""
    return " or ".join(
        k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()
    )


def with_keys(text: str, action: QAction) -> str:
    """``text`` with the action's shortcut after it, for a tooltip."""
    keys = keys_text(action)
    return f"{text} ({keys})" if keys else text


def _follow_text(action: QAction) -> None:
    """Keep the tooltip of an action whose text changes (Undo Paste 14 rows) with its keys."""

    def update() -> None:
        try:
            tip = with_keys(action.text().replace("&", ""), action)
            if action.toolTip() != tip:
                action.setToolTip(tip)
        except RuntimeError:  # the action is being destroyed
            pass

    action.changed.connect(update)
    update()


def _grid_action(owner: QWidget, text: str, name: str, keys: Sequence[str], tip: str) -> QAction:
    action = QAction(text, owner)
    action.setObjectName(name)
    action.setShortcuts([QKeySequence(k) for k in keys])
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    action.setToolTip(with_keys(tip, action))
    owner.addAction(action)
    return action


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
    _follow_text(undo)
    _follow_text(redo)
    owner.addAction(undo)
    owner.addAction(redo)
    open_file = QAction("&Open leads file…", owner)
    open_file.setObjectName("actOpenLeadsFile")  # Ctrl+O is the window's File ▸ Open
    open_file.setToolTip("Open a CSV, TSV, TXT or XLSX file of leads")
    paste = QAction("&Paste leads", owner)
    paste_keys = QKeySequence(QKeySequence.StandardKey.Paste).toString(
        QKeySequence.SequenceFormat.NativeText
    )
    paste.setToolTip(f"Paste rows copied in a spreadsheet ({paste_keys} in the table)")
    remove = _grid_action(
        owner, "&Remove selected rows", "actRemoveRows", ["Ctrl+-"], "Remove the selected rows"
    )
    fix = _grid_action(
        owner,
        "Apply the suggested &fix",
        "actApplyFix",
        ["Ctrl+.", "Alt+Return"],
        "Apply the suggested fix of the current cell or problem",
    )
    fix_all = _grid_action(
        owner,
        "Apply &all suggested fixes",
        "actApplyAllFixes",
        ["Ctrl+Shift+F"],
        "Apply every suggested fix in the list",
    )
    queue = _grid_action(
        owner,
        "&Queue leads",
        "actQueueLeads",
        ["Ctrl+Return", "Ctrl+Enter"],
        "Queue the ready rows",
    )
    problems = _grid_action(
        owner,
        "Go to the &problems",
        "actGoToProblems",
        ["F6"],
        "Move between the table and the list of problems",
    )
    field = _grid_action(
        owner,
        "Choose the &field of this column",
        "actChooseField",
        ["Alt+Down", "F4"],
        "Choose the field the current column is sent as",
    )
    return GridActions(undo, redo, open_file, paste, remove, fix, fix_all, queue, problems, field)


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
        self.header_box = QCheckBox("First &row is a header")  # Alt+H is the Help menu
        self.header_box.setObjectName("firstRowHeader")
        self.filter_box = QCheckBox("Only rows with &problems")
        self.filter_box.setObjectName("problemsOnly")
        self.clear_button = QPushButton("Clear grid")
        self.clear_button.setObjectName("clearGrid")
        self.clear_button.setToolTip("Take every row out of the grid (Undo brings them back)")
        self.header_box.setToolTip("Read the first row as the column titles")
        self.filter_box.setToolTip("Show only the rows that have a problem")
        for widget, name in (
            (self.open_button, "Open leads file"),
            (self.undo_button, "Undo"),
            (self.redo_button, "Redo"),
            (self.header_box, "First row is a header"),
            (self.filter_box, "Only rows with problems"),
            (self.clear_button, "Clear grid"),
        ):
            widget.setAccessibleName(name)
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


class StatusLine(QLabel):
    """One line of text, shortened with "…" when it does not fit; the whole of it in the
    tooltip (``text()`` is always the whole text)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text if text else "")
        self.setAccessibleDescription(text)
        self._fit()

    def _fit(self) -> None:
        shown = " ".join(self._full.split("\n"))
        width = max(self.width() - 4, 20)
        super().setText(self.fontMetrics().elidedText(shown, Qt.TextElideMode.ElideRight, width))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()


class GridFooter(QWidget):
    """The counts, the status line and the Queue button, on one line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gridFooter")
        self.status = StatusLine()
        self.status.setObjectName("gridStatus")
        self.status.setAccessibleName("Grid status")
        self.counts = QLabel()
        self.counts.setObjectName("gridCounts")
        self.counts.setAccessibleName("Row counts")
        self.queue_button = QPushButton("Queue leads")
        self.queue_button.setObjectName("queueLeads")
        self.queue_button.setAccessibleName("Queue leads")
        self._queue_keys = ""
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
            parts = [counted(total, "row")]
            if checked:
                parts += [f"{clean:,} ready", f"{warned:,} with warnings", f"{blocked:,} blocked"]
            if pending:
                parts.append(f"{pending:,} being queued")
            self.counts.setText(" · ".join(parts) + ("  (checking…)" if checking else ""))
        else:
            self.counts.setText("")
        self.queue_button.setText(f"Queue {counted(count, 'lead')}" if count else "Queue leads")
        self.queue_button.setEnabled(
            ready and count > 0 and not busy and not checking and not pending
        )
        keys = f" ({self._queue_keys})" if self._queue_keys else ""
        if not ready:
            tip = "Choose a template, campaign and allocation first."
        elif checking:
            tip = "The rows are being checked…"
        else:
            need = "needs" if blocked == 1 else "need"
            fixing = f"{counted(blocked, 'row')} {need} fixing first"
            tip = f"{counted(count, 'lead')} can be queued; {fixing}."
        self.queue_button.setToolTip(f"Queue the ready rows{keys}. {tip}")

    def set_queue_keys(self, action: QAction) -> None:
        """Name the queue shortcut in the button's tooltip."""
        self._queue_keys = keys_text(action)


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
