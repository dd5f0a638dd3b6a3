"""The side list of the batch grid: every problem in grid order, each with its suggested fix."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QLabel,
    QListView,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from noojee_desk.core.leads.paste import ProblemEntry, problem_text
from noojee_desk.core.leads.validate import ERROR, WARNING, Problem
from noojee_desk.ui.grid.controls import with_keys
from noojee_desk.ui.grid.marks import FixRole, RowIdRole, SeverityRole, severity_icon
from noojee_desk.ui.grid.model import BatchModel
from noojee_desk.ui.itemdata import AnyIndex, fill_roles
from noojee_desk.ui.theme import MARKS


class ProblemListModel(QAbstractListModel):
    """Every problem of the grid, in grid order: "Row 12 · Mobile: message"."""

    def __init__(self, grid: BatchModel, parent: Any = None) -> None:
        super().__init__(parent)
        self._grid = grid
        self._entries: list[ProblemEntry] = []
        self._errors = self._fixes = 0

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def multiData(self, index: AnyIndex, roleDataSpan: Any) -> None:
        fill_roles(self, index, roleDataSpan)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self._entries[index.row()]
        problem = entry.problem
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(entry)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.details(entry)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            kind = "Error" if problem.severity == ERROR else "Warning"
            return f"{kind}. {self.text(entry)}"
        if role == Qt.ItemDataRole.DecorationRole:
            return severity_icon(ERROR if problem.severity == ERROR else WARNING)
        if role == SeverityRole:
            return problem.severity
        if role == RowIdRole:
            return entry.row_id
        if role == FixRole:
            return problem.fix
        return None

    def text(self, entry: ProblemEntry) -> str:
        problem = entry.problem
        number = self._grid.row_number(entry.row_id)
        column = self._grid.column_of(problem.field)
        where = f"Row {number}" if number > 0 else "Row ?"
        if column is not None:
            where += f" · {self._grid.titles[column]}"
        elif problem.field:
            where += f" · {problem.field}"
        return f"{where}: {problem.message}"

    def details(self, entry: ProblemEntry) -> str:
        """The whole of one problem: where, the full message, and the suggested fix."""
        where, _, _message = self.text(entry).partition(": ")
        kind = "Error" if entry.problem.severity == ERROR else "Warning"
        return f"{kind} · {where}: {problem_text(entry.problem)}"

    def entry(self, position: int) -> ProblemEntry:
        return self._entries[position]

    def entries(self) -> list[ProblemEntry]:
        return list(self._entries)

    def counts(self) -> tuple[int, int]:
        """(errors, warnings)."""
        return self._errors, len(self._entries) - self._errors

    @property
    def fixes(self) -> int:
        """How many problems come with a suggested fix."""
        return self._fixes

    def _tally(self, entries: Iterable[ProblemEntry], sign: int) -> None:
        for entry in entries:
            problem = entry.problem
            if problem.severity == ERROR:
                self._errors += sign
            if problem.fix is not None:
                self._fixes += sign

    def reset(self, entries: list[ProblemEntry]) -> None:
        self.beginResetModel()
        self._entries = entries
        self._errors = self._fixes = 0
        self._tally(entries, 1)
        self.endResetModel()

    def rebuild(self) -> None:
        """All problems of the grid's current checks."""
        entries = [
            ProblemEntry(row.id, problem)
            for row in self._grid.all_rows()
            if row.check is not None and not row.queueing
            for problem in row.check.problems
        ]
        self.reset(entries)

    def replace_row(self, row_id: int, problems: Sequence[Problem]) -> None:
        """Update one row's problems in place (after an edit), keeping the grid order."""
        old = [i for i, e in enumerate(self._entries) if e.row_id == row_id]
        if old:
            first, last = old[0], old[-1]
            if last - first + 1 != len(old):  # not contiguous (should not happen): start over
                self.rebuild()
                return
            self.beginRemoveRows(QModelIndex(), first, last)
            self._tally(self._entries[first : last + 1], -1)
            del self._entries[first : last + 1]
            self.endRemoveRows()
            at = first
        else:
            number = self._grid.grid_number(row_id)
            at = bisect.bisect_left(
                self._entries, number, key=lambda e: self._grid.grid_number(e.row_id)
            )
        if problems:
            added = [ProblemEntry(row_id, p) for p in problems]
            self.beginInsertRows(QModelIndex(), at, at + len(problems) - 1)
            self._entries[at:at] = added
            self._tally(added, 1)
            self.endInsertRows()

    def drop_rows(self, row_ids: Iterable[int]) -> None:
        wanted = set(row_ids)
        if any(e.row_id in wanted for e in self._entries):
            self.reset([e for e in self._entries if e.row_id not in wanted])

    def refresh_text(self) -> None:
        if self._entries:
            self.dataChanged.emit(self.index(0), self.index(len(self._entries) - 1))


class ProblemDelegate(QStyledItemDelegate):
    """Two lines per problem (where, what) and a button with the suggested fix."""

    fix_clicked = Signal(QModelIndex)

    def button_rect(self, option: QStyleOptionViewItem, index: AnyIndex) -> QRect | None:
        fix = index.data(FixRole)
        if fix is None:
            return None
        metrics = option.fontMetrics
        width = min(metrics.horizontalAdvance(fix.label) + 20, int(option.rect.width() * 0.5))
        height = metrics.height() + 8
        rect = option.rect
        return QRect(rect.right() - width - 4, rect.top() + 3, width, height)

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        metrics = option.fontMetrics
        return QSize(200, metrics.height() * 2 + 16)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        text = opt.text
        opt.text = ""
        opt.icon = type(opt.icon)()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        where, _, message = text.partition(": ")
        rect = opt.rect.adjusted(6, 4, -6, -4)
        metrics = opt.fontMetrics
        line = metrics.height()
        severity = index.data(SeverityRole)
        painter.save()
        colour = MARKS[ERROR if severity == ERROR else WARNING]
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(colour))
        painter.drawRoundedRect(QRect(rect.left(), rect.top() + 2, 3, line * 2 + 2), 1, 1)
        # The mark's shape, not only its colour, tells an error from a warning.
        severity_icon(ERROR if severity == ERROR else WARNING).paint(
            painter, QRect(rect.left() + 6, rect.top() + (line + 4 - 12) // 2, 12, 12)
        )
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        button = self.button_rect(opt, index)
        text_left = rect.left() + 22
        first_width = (button.left() - 6 if button is not None else rect.right()) - text_left
        bold = QFont(opt.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.drawText(
            QRect(text_left, rect.top(), max(first_width, 10), line + 4),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            painter.fontMetrics().elidedText(where, Qt.TextElideMode.ElideRight, first_width),
        )
        painter.setFont(opt.font)
        width = rect.right() - text_left
        painter.drawText(
            QRect(text_left, rect.top() + line + 6, width, line + 2),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            metrics.elidedText(message, Qt.TextElideMode.ElideRight, width),
        )
        painter.restore()
        if button is not None:
            fix = index.data(FixRole)
            knob = QStyleOptionButton()
            knob.rect = button
            knob.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Raised
            knob.text = metrics.elidedText(
                fix.label, Qt.TextElideMode.ElideRight, button.width() - 12
            )
            knob.palette = opt.palette
            knob.fontMetrics = metrics
            style.drawControl(QStyle.ControlElement.CE_PushButton, knob, painter, widget)

    def editorEvent(
        self, event: QEvent, model: Any, option: QStyleOptionViewItem, index: AnyIndex
    ) -> bool:
        if isinstance(event, QMouseEvent) and event.type() == QEvent.Type.MouseButtonRelease:
            button = self.button_rect(option, index)
            if button is not None and button.contains(event.position().toPoint()):
                self.fix_clicked.emit(_plain(index))
                return True
        return super().editorEvent(event, model, option, index)


class ProblemList(QListView):
    """The list itself: Return or Enter on a problem goes to its cell in the table."""

    entered = Signal(QModelIndex)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            current = self.currentIndex()
            if current.isValid():
                self.entered.emit(current)
                return
        super().keyPressEvent(event)


class ProblemPanel(QWidget):
    """The title with the counts, the list of problems, the whole text of the current problem,
    and the button that applies every fix.

    ``problem_chosen(entry)``: the person clicked a problem or moved to it (show its cell);
    ``problem_entered(entry)``: Return on a problem (go to its cell); ``fix_requested(entry)``:
    its fix button; ``fix_all_requested()``: the button below.
    """

    problem_chosen = Signal(object)
    problem_entered = Signal(object)
    fix_requested = Signal(object)
    fix_all_requested = Signal()

    def __init__(self, problems: ProblemListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("problemPanel")
        self.problems = problems
        self.title = QLabel("Problems")
        self.title.setObjectName("problemTitle")
        self.list = ProblemList()
        self.list.setObjectName("problemList")
        self.list.setAccessibleName("Problems")
        self.list.setAccessibleDescription(
            "Every problem of the grid; Return goes to its cell, F6 back to the table."
        )
        self.list.setModel(problems)
        self.list.setUniformItemSizes(True)
        self.list.setMouseTracking(True)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.delegate = ProblemDelegate(self.list)
        self.delegate.fix_clicked.connect(
            lambda index: self.fix_requested.emit(problems.entry(index.row()))
        )
        self.list.setItemDelegate(self.delegate)
        self.list.clicked.connect(self._chosen)
        self.list.activated.connect(self._chosen)
        self.list.entered.connect(
            lambda index: self.problem_entered.emit(problems.entry(index.row()))
        )
        self.list.selectionModel().currentChanged.connect(self._current_changed)
        self.details = QLabel()
        self.details.setObjectName("problemDetails")
        self.details.setAccessibleName("Problem details")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.details.setContentsMargins(2, 2, 2, 2)
        # A long message scrolls in a few lines instead of pushing the list away.
        self.details_area = QScrollArea()
        self.details_area.setObjectName("problemDetailsArea")
        self.details_area.setWidget(self.details)
        self.details_area.setWidgetResizable(True)
        self.details_area.setFrameShape(QFrame.Shape.NoFrame)
        self.details_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.details_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        line = self.fontMetrics().lineSpacing()
        self.details_area.setMaximumHeight(line * 4 + 8)
        # On a short screen the panel may be squeezed to the table's height: a line of details
        # and two problems still show (Qt's own minimum for these is several lines).
        self.details_area.setMinimumHeight(line + 8)
        self.list.setMinimumHeight(line * 2 + 8)
        for signal in (problems.modelReset, problems.rowsInserted, problems.rowsRemoved):
            signal.connect(self.show_details)
        problems.dataChanged.connect(self.show_details)
        self.fix_all_button = QPushButton("Apply all suggested fixes")
        self.fix_all_button.setObjectName("fixAll")
        self.fix_all_button.setAccessibleName("Apply all suggested fixes")
        self.fix_all_button.clicked.connect(self.fix_all_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.details_area)
        layout.addWidget(self.fix_all_button)
        self.show_details()

    def _chosen(self, index: QModelIndex) -> None:
        self.problem_chosen.emit(self.problems.entry(index.row()))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.show_details()
        if current.isValid() and self.list.hasFocus():
            self.problem_chosen.emit(self.problems.entry(current.row()))

    def current_entry(self) -> ProblemEntry | None:
        current = self.list.currentIndex()
        if not current.isValid() or current.row() >= self.problems.rowCount():
            return None
        return self.problems.entry(current.row())

    def show_details(self, *_args: object) -> None:
        """The whole text of the current problem under the list (the list shortens it)."""
        entry = self.current_entry()
        if entry is None:
            self.details.setText(
                "Choose a problem to read it in full." if self.problems.rowCount() else ""
            )
            return
        self.details.setText(self.problems.details(entry))

    def set_keys(self, fix: QAction, fix_all: QAction, problems: QAction) -> None:
        """Name the shortcuts in the tooltips."""
        self.fix_all_button.setToolTip(with_keys("Apply every suggested fix in the list", fix_all))
        self.title.setToolTip(
            f"{with_keys('Go to this list and back to the table', problems)}; "
            f"{with_keys('apply the chosen problem’s fix', fix)}"
        )

    def update_counts(self, *, busy: bool) -> None:
        """The title's counts and the fix-all button (disabled while the grid is busy)."""
        errors, warnings = self.problems.counts()
        self.title.setText(
            f"Problems: {errors:,} errors, {warnings:,} warnings"
            if errors or warnings
            else "Problems: none"
        )
        fixes = self.problems.fixes
        self.fix_all_button.setText(
            f"Apply all {fixes:,} suggested fixes" if fixes else "Apply all suggested fixes"
        )
        self.fix_all_button.setEnabled(fixes > 0 and not busy)


def _plain(index: AnyIndex) -> QModelIndex:
    """A plain index of the same cell (a signal carries a QModelIndex)."""
    if isinstance(index, QModelIndex):
        return QModelIndex(index)
    return index.model().index(index.row(), index.column(), index.parent())
