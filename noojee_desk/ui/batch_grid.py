"""Paste many leads: the batch grid with its mapping row, problem list, fixes, undo and queueing."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionHeader,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from noojee_desk.core.bulk import paused_gc, release
from noojee_desk.core.leads.clipboard import parse_clipboard
from noojee_desk.core.leads.layouts import SYSTEM_FIELDS, FieldLayout, default_layout
from noojee_desk.core.leads.mapping import ColumnMapping, apply_mapping, detect_mapping, mapping_key
from noojee_desk.core.leads.spreadsheets import read_file
from noojee_desk.core.leads.table import Table
from noojee_desk.core.leads.text_tables import to_tsv
from noojee_desk.core.leads.validate import LeadCheck, Problem, Validator
from noojee_desk.ui.batch_model import (
    ERROR,
    MARKS,
    MUTED,
    AddRowsCommand,
    BatchModel,
    FixRole,
    GridLead,
    GridRow,
    GridState,
    MappingCommand,
    ProblemEntry,
    ProblemListModel,
    RemoveRowsCommand,
    ResetCommand,
    SetCellsCommand,
    SeverityRole,
    build_rows,
    column_title,
    severity_icon,
)
from noojee_desk.ui.tasks import Tasks

log = logging.getLogger(__name__)

#: Rows added to the model per step while a big paste fills the grid.
FILL_CHUNK = 2_000
#: Checks stored per step when a check of the whole grid comes back.
APPLY_CHUNK = 2_500
#: Edits of up to this many rows are re-checked at once on the UI thread; more wait for the
#: full check in the background.
QUICK_CHECK_ROWS = 200
#: Pause after an edit before the whole grid is checked again (duplicates across rows).
RECHECK_DELAY_MS = 350
FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")
NOT_SENT = "— not sent —"


# -- work done off the UI thread ---------------------------------------------------------------

#: The GIL switch interval while grid work runs in a worker thread (Python's default is 5 ms).
BUSY_SWITCH_INTERVAL = 0.0001
#: New objects after which a finished job freezes them rather than let a collection walk them
#: (a small job's few objects are collected as usual, cyclic garbage included). The 100,000
#: rows of a big paste are some 100,000 objects: a collection of them takes 50 ms or more.
FREEZE_AFTER = 10_000
_busy_workers = 0
_saved_interval = 0.005


async def in_worker(func: Any, *args: Any) -> Any:
    """Run ``func(*args)`` in the loop's executor without stalling the UI thread.

    Two things would: the GIL, which a worker busy in Python holds for up to the switch
    interval each time the UI thread asks for it (and painting asks often), so the interval is
    shorter meanwhile; and the cyclic garbage collector, which reading 100,000 rows triggers
    again and again, each time walking every object in the process with the GIL held (pauses of
    half a second). So collection is paused (``bulk.paused_gc``, shared with the lead-data
    code) until the work is done; after a big job the new objects, mostly the grid's long-lived
    rows and checks, are moved out of the collector's way (``gc.freeze``; they are still freed
    by reference counting as usual). Cyclic garbage that exists at that moment is frozen with
    them and never freed: a little memory, against a stall of 50 ms or more per collection.
    """
    global _busy_workers, _saved_interval
    if _busy_workers == 0:
        _saved_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(_saved_interval, BUSY_SWITCH_INTERVAL))
    _busy_workers += 1
    with paused_gc():
        try:
            return await asyncio.get_running_loop().run_in_executor(None, func, *args)
        finally:
            _busy_workers -= 1
            if _busy_workers == 0:
                sys.setswitchinterval(_saved_interval)
                if gc.get_count()[0] > FREEZE_AFTER:  # a collection now would stall
                    gc.freeze()


@dataclass(slots=True)
class CheckResult:
    checks: list[tuple[int, int, LeadCheck]]
    entries: list[ProblemEntry]


def check_rows(
    validator: Validator, mapping: list[str | None], rows: Sequence[GridRow]
) -> CheckResult:
    """Map and validate rows; runs in a worker thread while the UI thread may edit them.

    Each row's version is read before its cells (see ``BatchModel.set_cells``).
    """
    snapshot = [(r.id, r.version, r.cells) for r in rows]
    if not snapshot:
        return CheckResult([], [])
    leads = apply_mapping([cells for _, _, cells in snapshot], ColumnMapping(tuple(mapping)))
    checks = validator.validate_rows(leads, first_row=1)
    out = [(rid, version, check) for (rid, version, _), check in zip(snapshot, checks, strict=True)]
    entries = [
        ProblemEntry(rid, problem)
        for (rid, _, _), check in zip(snapshot, checks, strict=True)
        for problem in check.problems
    ]
    release(leads)
    release(snapshot)
    return CheckResult(out, entries)


@dataclass(slots=True)
class Prepared:
    """A table turned into grid rows: titles, header, mapping, rows; what was dropped."""

    titles: list[str]
    header: list[str] | None
    mapping: list[str | None]
    rows: list[GridRow]
    blank: int = 0
    notes: list[str] = field(default_factory=list)


def prepare_table(
    table: Table,
    layout: FieldLayout,
    saved: dict[str, list[str | None]],
    first_id: int,
    source: str,
) -> Prepared:
    """Detect the header, choose the mapping, build rows (blank rows left out); worker thread."""
    rows = table.rows
    width = max((len(r) for r in rows), default=0)
    has_header, found = detect_mapping(list(rows[0]), layout, saved, rows[1:21])
    mapping = found.to_list()
    header = [str(c).strip() for c in rows[0]] if has_header else None
    data = rows[1:] if has_header else rows
    titles = [column_title(c) for c in range(width)]
    if header is not None:
        header += [""] * (width - len(header))
        titles = [h or column_title(c) for c, h in enumerate(header)]
    kept: list[list[str]] = []
    numbers: list[int] = []
    blank = 0
    for number, cells in enumerate(data, start=1):
        if not any(c.strip() for c in cells):
            blank += 1
            continue
        kept.append(cells)
        numbers.append(number)
    grid_rows = build_rows(kept, first_id, source)
    for row, number in zip(grid_rows, numbers, strict=True):
        row.source_row = number
    mapping = mapping[:width] + [None] * (width - len(mapping))
    return Prepared(titles, header, mapping, grid_rows, blank)


#: Above this much HTML, the tab-separated flavour is read first (see ``read_clipboard``).
BIG_HTML = 2_000_000
#: Above this much tab-separated text, the HTML flavour is fetched only if it is needed.
BIG_TEXT = 1_000_000
_LOST_DIGITS = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d{1,3}")
_EXACT_NUMBERS = ("x:num", "sdval", "data-sheets-value")
EXACT_MARKS = tuple(mark.encode() for mark in _EXACT_NUMBERS)


def lost_digits(table: Table) -> bool:
    """Whether a cell shows a number the way spreadsheets shorten it ("4.12E+08")."""
    return any(
        _LOST_DIGITS.fullmatch(cell.strip()) for row in table.rows for cell in row if "E" in cell
    )


def read_clipboard(formats: dict[str, str | bytes], text_table: Table | None = None) -> Table:
    """The table on the clipboard; runs in a worker thread.

    Spreadsheets put the same cells on the clipboard twice: as tab-separated text (quoted where
    a cell holds tabs, quotes or line breaks) and as an HTML table. The HTML reading is the
    better one only where a number is shown differently from its value (Excel's "4.12E+08"),
    because the HTML carries the exact value; but it is some 30 times slower. Small pastes use
    it as ``parse_clipboard`` decides; a big one uses the text unless the text shows such
    numbers and the HTML has their exact values. ``text_table``: the text, read already (its
    rows are emptied when the HTML is read instead).
    """
    html_payload = formats.get("text/html")
    text_payload = formats.get("text/plain")
    if html_payload is None or text_payload is None or len(html_payload) < BIG_HTML:
        return parse_clipboard(formats)
    table = text_table if text_table is not None else parse_clipboard({"text/plain": text_payload})
    if isinstance(html_payload, str):
        exact = any(mark in html_payload for mark in _EXACT_NUMBERS)
    else:
        exact = any(mark in html_payload for mark in EXACT_MARKS)
    if table.rows and not (exact and lost_digits(table)):
        return table
    read = parse_clipboard(formats)
    if table is text_table and read.rows is not table.rows:
        release(table.rows)  # freed here, a slice at a time, not in one go by the UI thread
    return read


def exact_values_html(markup: QByteArray) -> bytes | None:
    """The clipboard's HTML if it holds the exact values of numbers; worker thread.

    Searched where it lies: bringing 30 MB over to Python would cost the window a frame, and
    without the exact values the text is all there is.
    """
    return markup.data() if any(markup.contains(mark) for mark in EXACT_MARKS) else None


def files_in(mime: QMimeData) -> list[Path]:
    """Local lead files in a drag: CSV, TSV, TXT or XLSX."""
    if not mime.hasUrls():
        return []
    return [
        Path(url.toLocalFile())
        for url in mime.urls()
        if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in FILE_SUFFIXES
    ]


def clipboard_formats(mime: QMimeData | None) -> dict[str, str | bytes]:
    """The text flavours of a clipboard payload (never an image)."""
    formats: dict[str, str | bytes] = {}
    if mime is None:
        return formats
    # Raw bytes (decoded in the worker thread): turning 30 MB into a str here would stall.
    if mime.hasHtml():
        formats["text/html"] = mime.data("text/html").data()
    if mime.hasText():
        formats["text/plain"] = mime.data("text/plain").data()
    return formats


# -- widgets -------------------------------------------------------------------------------------


class GridView(QTableView):
    """The table: Ctrl+V / Ctrl+C / Delete like a spreadsheet, a hint while it is empty."""

    paste_requested = Signal()
    copy_requested = Signal()
    clear_requested = Signal()

    hint = (
        "Copy rows in Excel, Google Sheets or LibreOffice and press Ctrl+V here,\n"
        "or open a CSV, TSV or XLSX file, or drop it on this window."
    )

    def keyPressEvent(self, event: QKeyEvent) -> None:
        editing = self.state() == QAbstractItemView.State.EditingState
        if not editing:
            if event.matches(QKeySequence.StandardKey.Paste):
                self.paste_requested.emit()
                return
            if event.matches(QKeySequence.StandardKey.Copy):
                self.copy_requested.emit()
                return
            if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and not event.modifiers():
                self.clear_requested.emit()
                return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the visible cells here, in one go.

        ``QTableView`` paints cell by cell and calls into Python for each one, taking the GIL
        every time; while a worker thread checks rows, each of those calls waits its turn and a
        frame takes hundreds of milliseconds. Painted from Python, a frame holds the GIL from
        start to end (a few milliseconds), so the window stays smooth whatever the workers do.
        """
        model = self.model()
        painter = QPainter(self.viewport())
        try:
            painter.fillRect(event.rect(), self.palette().base())
            if isinstance(model, BatchModel) and model.rowCount() and model.columnCount():
                self._paint_cells(painter, event.rect(), model)
            elif (
                model is not None
                and model.rowCount() == 0
                and not getattr(model, "filtered", False)
            ):
                painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(
                    self.viewport().rect().adjusted(20, 20, -20, -20),
                    int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                    self.hint,
                )
        finally:
            painter.end()

    def _grid_colour(self) -> QColor:
        option = QStyleOptionViewItem()
        option.initFrom(self)
        hint = self.style().styleHint(QStyle.StyleHint.SH_Table_GridLineColor, option, self)
        if hint:
            return QColor.fromRgba(hint & 0xFFFFFFFF)
        return self.palette().color(QPalette.ColorRole.Mid)

    def _paint_cells(self, painter: QPainter, area: QRect, model: BatchModel) -> None:
        rows, columns = model.rowCount(), model.columnCount()
        top = self.rowAt(area.top())
        left = self.columnAt(area.left())
        if top < 0 or left < 0:
            return
        bottom = self.rowAt(area.bottom())
        bottom = rows - 1 if bottom < 0 else bottom
        right = self.columnAt(area.right())
        right = columns - 1 if right < 0 else right
        height = self.rowHeight(top)
        first_y = self.rowViewportPosition(top)
        visible = [
            (c, self.columnViewportPosition(c), self.columnWidth(c))
            for c in range(left, right + 1)
            if not self.isColumnHidden(c)
        ]
        selection = [
            (r.top(), r.left(), r.bottom(), r.right()) for r in self.selectionModel().selection()
        ]
        palette = self.palette()
        text_colour = palette.color(QPalette.ColorRole.Text)
        chosen_text = palette.color(QPalette.ColorRole.HighlightedText)
        chosen = palette.color(QPalette.ColorRole.Highlight)
        metrics = self.fontMetrics()
        align = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        colours: dict[str, QColor] = {}
        for offset, r in enumerate(range(top, bottom + 1)):
            y = first_y + offset * height
            row = model.row_at(r)
            for c, x, width in visible:
                cell = QRect(x, y, width - 1, height - 1)
                background, foreground = model.cell_colours(row, c)
                picked = any(t <= r <= b and lo <= c <= hi for t, lo, b, hi in selection)
                if picked:
                    painter.fillRect(cell, chosen)
                    if background is not None:  # keep the problem visible in a selection
                        painter.fillRect(QRect(x, y, 4, height - 1), QColor(background).darker(130))
                    pen = chosen_text
                else:
                    if background is not None:
                        painter.fillRect(cell, colours.setdefault(background, QColor(background)))
                    pen = (
                        colours.setdefault(foreground, QColor(foreground))
                        if foreground is not None
                        else text_colour
                    )
                text = row.cell(c)
                if text:
                    if "\n" in text or "\r" in text:
                        text = " ↵ ".join(text.splitlines())
                    painter.setPen(pen)
                    painter.drawText(
                        cell.adjusted(4, 0, -4, 0),
                        align,
                        metrics.elidedText(text, Qt.TextElideMode.ElideRight, width - 9),
                    )
        if self.showGrid():
            painter.setPen(self._grid_colour())
            last_y = first_y + (bottom - top + 1) * height - 1
            far_x = visible[-1][1] + visible[-1][2] - 1 if visible else area.right()
            for offset in range(bottom - top + 1):
                y = first_y + (offset + 1) * height - 1
                painter.drawLine(area.left(), y, far_x, y)
            for _c, x, width in visible:
                painter.drawLine(x + width - 1, first_y, x + width - 1, last_y)
        current = self.currentIndex()
        if current.isValid() and top <= current.row() <= bottom and self.hasFocus():
            for c, x, width in visible:
                if c == current.column():
                    y = first_y + (current.row() - top) * height
                    painter.setPen(QPen(chosen.darker(120), 2))
                    painter.drawRect(QRect(x + 1, y + 1, width - 3, height - 3))


class RowHeader(QHeaderView):
    """Row numbers with a red dot or amber triangle for rows with problems (painted in Python,
    for the same reason as ``GridView.paintEvent``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setObjectName("rowHeader")
        self.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.setDefaultAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def sizeHint(self) -> QSize:
        model = self.model()
        digits = len(str(max(model.rowCount(), 1) if model is not None else 1))
        width = self.fontMetrics().horizontalAdvance("9" * max(digits, 2)) + 12 + 4 + 14
        return QSize(width, self.defaultSectionSize())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self.viewport())
        try:
            painter.fillRect(event.rect(), self.palette().color(QPalette.ColorRole.Window))
            model = self.model()
            if isinstance(model, BatchModel) and model.rowCount():
                self._paint_sections(painter, event.rect(), model)
        finally:
            painter.end()

    def _paint_sections(self, painter: QPainter, area: QRect, model: BatchModel) -> None:
        first = self.logicalIndexAt(area.top())
        if first < 0:
            return
        last = self.logicalIndexAt(area.bottom())
        last = model.rowCount() - 1 if last < 0 else last
        table = self.parent()
        selection = table.selectionModel() if isinstance(table, QTableView) else None
        ranges = (
            [(r.top(), r.bottom()) for r in selection.selection()] if selection is not None else []
        )
        style = self.style()
        width = self.viewport().width()
        for section in range(first, last + 1):
            option = QStyleOptionHeader()
            option.initFrom(self)
            option.rect = QRect(
                0, self.sectionViewportPosition(section), width, self.sectionSize(section)
            )
            option.orientation = Qt.Orientation.Vertical
            option.section = section
            option.position = QStyleOptionHeader.SectionPosition.Middle
            option.textAlignment = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            option.text = model.headerData(section, Qt.Orientation.Vertical) or ""
            severity = model.headerData(section, Qt.Orientation.Vertical, SeverityRole)
            if severity is not None:
                option.icon = severity_icon(severity)
                option.iconAlignment = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
            if any(t <= section <= b for t, b in ranges):
                option.state |= QStyle.StateFlag.State_On
            else:
                option.state |= QStyle.StateFlag.State_Raised
            style.drawControl(QStyle.ControlElement.CE_Header, option, painter, self)


class _NoWheelUnlessFocused(QObject):
    """Scrolling across the mapping row must not change a column's field by accident."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.Wheel
            and isinstance(watched, QWidget)
            and not watched.hasFocus()
        ):
            event.ignore()
            return True
        return False


class MappingHeader(QHeaderView):
    """The column header with the mapping row: a drop-down above each column's title."""

    picked = Signal(int, object)  # column, target field (None: not sent)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setObjectName("mappingRow")
        self.setSectionsClickable(True)
        self.setHighlightSections(True)
        self.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.setMinimumSectionSize(80)
        self.setDefaultSectionSize(150)
        self._combos: list[QComboBox] = []
        self._choices: list[str] = []
        self._phones: frozenset[str] = frozenset()
        self._required: frozenset[str] = frozenset()
        self._mapping: list[str | None] = []
        self._wheel_guard = _NoWheelUnlessFocused(self)
        probe = QComboBox()
        self._combo_height = probe.sizeHint().height()
        probe.deleteLater()
        self._strip = self._combo_height + 6
        self.sectionResized.connect(self._place)
        self.sectionMoved.connect(self._place)
        self.sectionCountChanged.connect(self._sync)
        self.geometriesChanged.connect(self._place)

    @property
    def combos(self) -> list[QComboBox]:
        return list(self._combos)

    def set_choices(
        self, names: Sequence[str], phones: Sequence[str], required: Sequence[str]
    ) -> None:
        self._choices = list(names)
        self._phones = frozenset(phones)
        self._required = frozenset(required)
        for combo in self._combos:
            self._fill(combo)
        self.set_mapping(self._mapping)

    def set_mapping(self, mapping: Sequence[str | None]) -> None:
        self._mapping = list(mapping)
        for column, combo in enumerate(self._combos):
            target = self._mapping[column] if column < len(self._mapping) else None
            combo.blockSignals(True)
            found = combo.findData(target) if target is not None else 0
            if found < 0:  # a field the current layout does not know
                combo.addItem(f"{target} (not in template)", target)
                found = combo.count() - 1
            combo.setCurrentIndex(found)
            combo.setToolTip(self._tip(column, target))
            combo.blockSignals(False)

    def _tip(self, column: int, target: str | None) -> str:
        model = self.model()
        title = model.headerData(column, Qt.Orientation.Horizontal) if model is not None else ""
        if target is None:
            return f"Column “{title}” is not sent. Choose the template field it holds."
        return f"Column “{title}” is sent as the field {target}."

    def _label(self, name: str) -> str:
        marks = (" ☎" if name in self._phones else "") + (" *" if name in self._required else "")
        return name + marks

    def _fill(self, combo: QComboBox) -> None:
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(NOT_SENT, None)
        for name in self._choices:
            combo.addItem(self._label(name), name)
        combo.blockSignals(False)

    def _sync(self, *_args: object) -> None:
        count = self.count()
        while len(self._combos) > count:
            self._combos.pop().deleteLater()
        while len(self._combos) < count:
            column = len(self._combos)
            combo = QComboBox(self.viewport())
            combo.setObjectName(f"mapColumn{column}")
            combo.setAccessibleName(f"Field for column {column + 1}")
            combo.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(6)
            combo.installEventFilter(self._wheel_guard)
            self._fill(combo)
            combo.activated.connect(lambda _i, c=column: self._activated(c))
            self._combos.append(combo)
            combo.show()
        self.set_mapping(self._mapping)
        self._place()

    def _activated(self, column: int) -> None:
        combo = self._combos[column]
        self.picked.emit(column, combo.currentData())

    def _place(self, *_args: object) -> None:
        for column, combo in enumerate(self._combos):
            if self.isSectionHidden(column):
                combo.hide()
                continue
            x = self.sectionViewportPosition(column)
            width = self.sectionSize(column)
            combo.setGeometry(x + 3, 3, max(width - 6, 20), self._combo_height)
            combo.setVisible(x + width > 0 and x < self.viewport().width())

    def sectionSizeFromContents(self, logical_index: int) -> QSize:
        size = super().sectionSizeFromContents(logical_index)
        return QSize(max(size.width(), 140), size.height() + self._strip)

    def sizeHint(self) -> QSize:
        size = super().sizeHint()
        if self.count() == 0:
            size.setHeight(size.height() + self._strip)
        return size

    def paintEvent(self, event: QPaintEvent) -> None:
        """The titles below the drop-downs, drawn by the style from Python (see ``GridView``)."""
        painter = QPainter(self.viewport())
        try:
            window = self.palette().color(QPalette.ColorRole.Window)
            painter.fillRect(event.rect(), window)
            model = self.model()
            if model is None or not self.count():
                return
            first = self.logicalIndexAt(event.rect().left())
            last = self.logicalIndexAt(event.rect().right())
            first = 0 if first < 0 else first
            last = self.count() - 1 if last < 0 else last
            style = self.style()
            height = self.viewport().height()
            muted = QColor(MUTED)
            for section in range(first, last + 1):
                if self.isSectionHidden(section):
                    continue
                option = QStyleOptionHeader()
                option.initFrom(self)
                option.rect = QRect(
                    self.sectionViewportPosition(section),
                    self._strip,
                    self.sectionSize(section),
                    height - self._strip,
                )
                option.orientation = Qt.Orientation.Horizontal
                option.section = section
                option.position = QStyleOptionHeader.SectionPosition.Middle
                option.textAlignment = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
                option.text = option.fontMetrics.elidedText(
                    str(model.headerData(section, Qt.Orientation.Horizontal) or ""),
                    Qt.TextElideMode.ElideRight,
                    option.rect.width() - 12,
                )
                option.state |= QStyle.StateFlag.State_Raised
                if not getattr(model, "is_mapped", lambda _c: True)(section):
                    option.palette.setColor(QPalette.ColorRole.ButtonText, muted)
                style.drawControl(QStyle.ControlElement.CE_Header, option, painter, self)
        finally:
            painter.end()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._place()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._place()


class ProblemDelegate(QStyledItemDelegate):
    """Two lines per problem (where, what) and a button with the suggested fix."""

    fix_clicked = Signal(QModelIndex)

    def button_rect(self, option: QStyleOptionViewItem, index: QModelIndex) -> QRect | None:
        fix = index.data(FixRole)
        if fix is None:
            return None
        metrics = option.fontMetrics
        width = min(metrics.horizontalAdvance(fix.label) + 20, int(option.rect.width() * 0.5))
        height = metrics.height() + 8
        rect = option.rect
        return QRect(rect.right() - width - 4, rect.top() + 3, width, height)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        metrics = option.fontMetrics
        return QSize(200, metrics.height() * 2 + 16)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
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
        colour = MARKS[ERROR if severity == ERROR else "warning"]
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(colour))
        painter.drawRoundedRect(QRect(rect.left(), rect.top() + 2, 4, line * 2 + 2), 2, 2)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        button = self.button_rect(opt, index)
        text_left = rect.left() + 10
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
        self, event: QEvent, model: Any, option: QStyleOptionViewItem, index: QModelIndex
    ) -> bool:
        if event.type() == QEvent.Type.MouseButtonRelease:
            button = self.button_rect(option, index)
            if button is not None and button.contains(event.position().toPoint()):
                self.fix_clicked.emit(QModelIndex(index))
                return True
        return super().editorEvent(event, model, option, index)


# -- the grid ------------------------------------------------------------------------------------


class BatchGrid(QWidget):
    """Paste or open many leads, fix every problem in place, then queue the valid ones.

    The window wires ``queue_requested(leads: list[GridLead], source: str)`` to the outbox and calls
    ``rows_queued(row_ids)`` once they are stored (or ``queue_failed(message)``); the grid keeps
    the rows until then. ``mapping_saved(signature, mapping)`` asks the window to remember a
    mapping the person chose, keyed by the header's signature.
    """

    queue_requested = Signal(list, str)
    mapping_saved = Signal(str, list)
    rows_shown = Signal(int)  # the first rows of a paste or file are in the grid
    loaded = Signal(int)  # a paste or file is fully in the grid and checked
    checked = Signal()  # a check of the whole grid finished
    status_changed = Signal(str)

    def __init__(self, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("batchGrid")
        self.setAcceptDrops(True)
        self.tasks = tasks
        self._layout: FieldLayout | None = None
        self._validator: Validator | None = None
        self._saved: dict[str, list[str | None]] = {}
        self._target_ready = False
        self._busy = ""  # what a running load is doing; nothing else may change the grid then
        self._pending: set[int] = set()  # rows handed to the queue, not confirmed yet
        self._source = ""
        self._check_task: asyncio.Task[Any] | None = None
        self._check_dirty = False
        self._refilter = False
        self._structure_gen = 0
        self._clipboard_changes = 0  # a paste that reads the clipboard twice checks this
        QApplication.clipboard().dataChanged.connect(self._clipboard_changed)
        self.summary_dialog: QMessageBox | None = None
        self.file_dialog: QFileDialog | None = None

        self.undo_stack = QUndoStack(self)
        self.model = BatchModel(self)
        self.model.edit_handler = self._push_edit
        self.model.cells_edited.connect(self._cells_edited)
        self.model.structure_changed.connect(self._structure_changed)
        self.model.checks_changed.connect(self._update_summary)
        self.problems = ProblemListModel(self.model, self)

        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.timeout.connect(self._start_full_check)

        self._build()
        self._sync_controls()

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.view = GridView()
        self.view.setObjectName("batchTable")
        self.view.setAccessibleName("Leads to queue")
        self.header = MappingHeader(self.view)
        self.view.setHorizontalHeader(self.header)
        self.view.setModel(self.model)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(False)
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        vertical = RowHeader(self.view)
        self.view.setVerticalHeader(vertical)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.header.setResizeContentsPrecision(200)
        self.header.picked.connect(self._mapping_picked)
        self.view.paste_requested.connect(self.paste_from_clipboard)
        self.view.copy_requested.connect(self.copy_selection)
        self.view.clear_requested.connect(self.clear_selected_cells)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)

        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        redo_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
        for extra in ("Ctrl+Shift+Z", "Ctrl+Y"):
            if QKeySequence(extra) not in redo_keys:
                redo_keys.append(QKeySequence(extra))
        self.redo_action.setShortcuts(redo_keys)
        self.redo_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(self.undo_action)
        self.addAction(self.redo_action)
        self.open_action = QAction("&Open leads file…", self)
        self.open_action.setObjectName("actOpenLeadsFile")  # Ctrl+O is the window's File ▸ Open
        self.open_action.triggered.connect(self.choose_file)
        self.paste_action = QAction("&Paste leads", self)
        self.paste_action.triggered.connect(self.paste_from_clipboard)
        self.remove_action = QAction("&Remove selected rows", self)
        self.remove_action.setObjectName("actRemoveRows")
        self.remove_action.setShortcut(QKeySequence("Ctrl+-"))
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.remove_action.triggered.connect(self.remove_selected_rows)
        self.addAction(self.remove_action)

        def tool(action: QAction, name: str) -> QToolButton:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setObjectName(name)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            return button

        self.open_button = tool(self.open_action, "openFile")
        self.open_button.setText("Open file…")
        self.undo_button = tool(self.undo_action, "undoButton")
        self.redo_button = tool(self.redo_action, "redoButton")
        self.header_box = QCheckBox("First row is a &header")
        self.header_box.setObjectName("firstRowHeader")
        self.header_box.toggled.connect(self._header_toggled)
        self.filter_box = QCheckBox("Only rows with &problems")
        self.filter_box.setObjectName("problemsOnly")
        self.filter_box.toggled.connect(self._filter_toggled)
        self.clear_button = QPushButton("Clear grid")
        self.clear_button.setObjectName("clearGrid")
        self.clear_button.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        for widget in (self.open_button, self.undo_button, self.redo_button):
            top.addWidget(widget)
        top.addSpacing(12)
        top.addWidget(self.header_box)
        top.addWidget(self.filter_box)
        top.addStretch(1)
        top.addWidget(self.clear_button)

        self.problem_title = QLabel("Problems")
        self.problem_title.setObjectName("problemTitle")
        self.problem_list = QListView()
        self.problem_list.setObjectName("problemList")
        self.problem_list.setAccessibleName("Problems")
        self.problem_list.setModel(self.problems)
        self.problem_list.setUniformItemSizes(True)
        self.problem_list.setMouseTracking(True)
        self.problem_list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problem_delegate = ProblemDelegate(self.problem_list)
        self.problem_delegate.fix_clicked.connect(self._fix_clicked)
        self.problem_list.setItemDelegate(self.problem_delegate)
        self.problem_list.clicked.connect(self._problem_clicked)
        self.problem_list.activated.connect(self._problem_clicked)
        self.fix_all_button = QPushButton("Apply all suggested fixes")
        self.fix_all_button.setObjectName("fixAll")
        self.fix_all_button.clicked.connect(self.apply_all_fixes)
        side = QWidget()
        side.setObjectName("problemPanel")
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.problem_title)
        side_layout.addWidget(self.problem_list, 1)
        side_layout.addWidget(self.fix_all_button)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("gridSplitter")
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([760, 320])

        self.status = QLabel()
        self.status.setObjectName("gridStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.counts = QLabel()
        self.counts.setObjectName("gridCounts")
        self.queue_button = QPushButton("Queue leads")
        self.queue_button.setObjectName("queueLeads")
        self.queue_button.clicked.connect(self.request_queue)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.counts)
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.queue_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        layout.addLayout(bottom)

    # -- configuration by the window ---------------------------------------------------------

    def set_layout(
        self, layout: FieldLayout, validator: Validator, saved_mappings: dict[str, list[str | None]]
    ) -> None:
        """The template changed: new target fields, a new validator, the saved mappings."""
        self._layout = layout
        self._validator = validator
        self._saved = dict(saved_mappings)
        self.header.set_choices(layout.mappable_names, layout.phone_fields, layout.required_fields)
        if self.model.columnCount() and not self._busy:
            header = self.model.header
            names = set(layout.mappable_names)
            if header is not None:
                sample = [r.cells for r in self.model.all_rows()[:20]]
                mapping = detect_mapping(header, layout, self._saved, sample)[1].to_list()
            else:
                mapping = [m if m in names else None for m in self.model.mapping]
            self.model.set_mapping(mapping)
            self.header.set_mapping(self.model.mapping)
        self._schedule_check(0, refilter=True)
        self._sync_controls()

    def set_target_ready(self, ready: bool) -> None:
        """Whether a template, campaign and allocation are chosen (queueing needs them)."""
        self._target_ready = ready
        self._sync_controls()

    def rows_queued(self, row_ids: Sequence[int]) -> None:
        """The window stored these rows in the outbox: take them out of the grid for good."""
        ids = list(row_ids)
        self._pending.difference_update(ids)
        self.model.remove_rows(ids, gone=True)
        self.problems.drop_rows(ids)
        left = self.model.total()
        self._say(
            f"Queued {len(ids):,} leads."
            + (f" {left:,} rows stay here to be fixed." if left else "")
        )
        self._sync_controls()

    def queue_failed(self, message: str) -> None:
        """Queueing failed: the rows stay in the grid as they were."""
        ids = list(self._pending)
        self._pending.clear()
        self.model.set_queueing(ids, False)
        self._say(f"The leads were not queued: {message}", error=True)
        self._sync_controls()

    # -- reading input -----------------------------------------------------------------------

    def paste_from_clipboard(self) -> asyncio.Task[Any] | None:
        """Ctrl+V: into an empty grid (new rows, header detected) or into the selected cells."""
        mime = QApplication.clipboard().mimeData()
        html_later = False
        if mime is not None and mime.hasText() and mime.hasHtml():
            text = mime.data("text/plain").data()
            if len(text) > BIG_TEXT:  # big: the HTML only if the text shows lost digits
                formats: dict[str, str | bytes] = {"text/plain": text}
                html_later = True
        if not html_later:
            formats = clipboard_formats(mime)
        if not formats:
            self._say("The clipboard holds no text. Copy cells in a spreadsheet first.", error=True)
            return None
        return self.tasks.spawn(self._paste(formats, html_later), name="paste leads")

    def open_file(self, path: str | Path) -> asyncio.Task[Any]:
        """Read a CSV, TSV, TXT or XLSX file into the grid (off the UI thread)."""
        return self.tasks.spawn(self._open(Path(path)), name="open leads file")

    def choose_file(self) -> None:
        dialog = QFileDialog(self, "Open leads file")
        dialog.setObjectName("openLeadsDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(["Lead files (*.csv *.tsv *.txt *.xlsx *.xlsm)", "All files (*)"])
        dialog.fileSelected.connect(self.open_file)
        self.file_dialog = dialog
        dialog.open()

    def _clipboard_changed(self) -> None:
        self._clipboard_changes += 1

    async def _paste(self, formats: dict[str, str | bytes], html_later: bool = False) -> None:
        if self._busy:
            self._say(f"Wait a moment: {self._busy}")
            return
        started = time.perf_counter()
        changes = self._clipboard_changes
        self._set_busy("Reading the clipboard…")
        try:
            table = await in_worker(read_clipboard, formats)
            if html_later and table.rows and await in_worker(lost_digits, table):
                mime = QApplication.clipboard().mimeData()
                if changes == self._clipboard_changes and mime is not None and mime.hasHtml():
                    markup = mime.data("text/html")
                    await asyncio.sleep(0)  # the window paints between the steps
                    exact = await in_worker(exact_values_html, markup)
                    if exact is not None:
                        formats = {**formats, "text/html": exact}
                        self._progress("Reading the exact numbers from the clipboard…")
                        table = await in_worker(read_clipboard, formats, table)
        finally:
            self._set_busy("")
        if not table.rows or not any(any(c.strip() for c in r) for r in table.rows):
            self._say(
                "The clipboard holds no table. Copy cells in a spreadsheet first.", error=True
            )
            return
        selected = self.view.selectionModel().selectedIndexes()
        if self.model.total() and selected:
            self._paste_into_selection(table, selected)
            return
        stamp = time.strftime("%d %b %H:%M")
        await self._load(table, f"Pasted {stamp}", started)

    async def _open(self, path: Path) -> None:
        if self._busy:
            self._say(f"Wait a moment: {self._busy}")
            return
        started = time.perf_counter()
        self._set_busy(f"Reading {path.name}…")
        try:
            table = await in_worker(read_file, path)
        except Exception as exc:  # read_file reports problems itself; this is the last guard
            log.exception("reading %s failed", path)
            self._say(f"{path.name} could not be read: {exc}", error=True)
            return
        finally:
            self._set_busy("")
        if not table.rows:
            why = "; ".join(_problem_message(p) for p in table.problems[:3])
            self._say(f"{path.name} holds no rows{': ' + why if why else '.'}", error=True)
            return
        await self._load(table, path.name, started)

    async def _load(self, table: Table, source: str, started: float) -> None:
        """Put a new table into the grid: rows in chunks, checked in the background."""
        layout = self._layout or default_layout()
        self._set_busy("Preparing rows…")
        try:
            first_id = self.model.reserve_ids(len(table.rows))
            prepared = await in_worker(
                prepare_table, table, layout, dict(self._saved), first_id, source
            )
        except Exception:
            self._set_busy("")
            raise
        rows = prepared.rows
        if not rows:
            self._set_busy("")
            self._say("There are no rows with data below the header.", error=True)
            return
        old = self.model.state()
        append = bool(old.rows) and old.titles == prepared.titles and old.header == prepared.header
        if old.rows and not append and self._pending:
            self._set_busy("")
            self._say("Wait until the leads being queued are stored, then paste again.", error=True)
            return
        validator = self._validator
        self._set_busy(f"Adding {len(rows):,} rows…")
        shown_after = 0.0
        try:
            if not append:
                self.model.load(GridState(prepared.titles, prepared.header, prepared.mapping, []))
                self.header.set_mapping(prepared.mapping)
            # The check below covers every row: no other check of the grid is due.
            self._check_timer.stop()
            self._check_dirty = validator is None and self._check_dirty
            # Rows first, then the check: filling the grid keeps the UI thread busy, and a
            # check running meanwhile would only make each step wait for the GIL.
            for start in range(0, len(rows), FILL_CHUNK):
                self.model.append_rows(rows[start : start + FILL_CHUNK], announce=False)
                if start == 0:
                    self._fit_columns()
                    self.rows_shown.emit(len(rows))
                    shown_after = time.perf_counter() - started
                if len(rows) > FILL_CHUNK:
                    done = min(start + FILL_CHUNK, len(rows))
                    self._progress(f"Adding rows… {done:,} of {len(rows):,}")
                await asyncio.sleep(0)
            check: asyncio.Future[CheckResult] | None = None
            if validator is not None:
                snapshot_rows = (old.rows if append else []) + rows
                mapping = old.mapping if append else prepared.mapping
                check = asyncio.ensure_future(
                    in_worker(check_rows, validator, mapping, snapshot_rows)
                )
            if append:
                self.undo_stack.push(
                    AddRowsCommand(self.model, rows, f"Add {len(rows):,} rows", applied=True)
                )
            else:
                new = GridState(prepared.titles, prepared.header, prepared.mapping, list(rows))
                text = "Clear and paste" if old.rows else f"Paste {len(rows):,} rows"
                self.undo_stack.push(ResetCommand(self.model, new, text, applied=True, old=old))
            self._source = source if not append else self._source
            self._structure_gen += 1
            if check is not None:
                self._progress(f"Checking {self.model.total():,} rows…")
                result = await check
                if validator is self._validator and not self._check_dirty:
                    await self._apply_check(result, refilter=True)
                else:
                    self._schedule_check(0, refilter=True)
        finally:
            self._set_busy("")
        verb = "Added" if append else "Pasted" if source.startswith("Pasted") else "Opened"
        notes = [f"{verb} {len(rows):,} rows"]
        if prepared.header is not None:
            notes.append("first row read as the header")
        if prepared.blank:
            notes.append(f"{prepared.blank:,} empty rows left out")
        if table.problems:
            notes.append(
                f"{len(table.problems):,} reading problems "
                f"(first: {_problem_message(table.problems[0])})"
            )
        if old.rows and not append:
            notes.append(
                f"replaced the {len(old.rows):,} rows that were here (Undo brings them back)"
            )
        if self._validator is None:
            notes.append("choose a template to check them")
        self._say("; ".join(notes) + f". Visible after {shown_after:.2f} s.")
        self._sync_controls()
        self.loaded.emit(len(rows))

    def _paste_into_selection(self, table: Table, selected: list[QModelIndex]) -> None:
        """Spreadsheet paste: the block lands at the top-left selected cell; one value fills all."""
        block = table.rows
        model = self.model
        changes: list[tuple[int, int, str, str]] = []
        columns = model.columnCount()
        if len(block) == 1 and len(block[0]) == 1 and len(selected) > 1:
            value = block[0][0]
            for index in selected:
                row = model.row_at(index.row())
                if not row.queueing:
                    changes.append((row.id, index.column(), row.cell(index.column()), value))
            self._push_edit(changes, f"Paste into {len(changes):,} cells")
            return
        top = min(i.row() for i in selected)
        left = min(i.column() for i in selected)
        dropped = 0
        new_cells: list[list[str]] = []
        for offset, cells in enumerate(block):
            position = top + offset
            fitting = cells[: max(columns - left, 0)]
            dropped += len(cells) - len(fitting)
            if position < model.rowCount():
                row = model.row_at(position)
                if row.queueing:
                    continue
                for c, value in enumerate(fitting):
                    changes.append((row.id, left + c, row.cell(left + c), value))
            else:
                new_cells.append([""] * left + list(fitting))
        if new_cells:
            first = model.total() + 1
            rows = model.new_rows(new_cells, self._source or "Pasted", first)
            for row in rows:
                row.cells += [""] * (columns - len(row.cells))
            self.undo_stack.push(
                AddRowsCommand(model, rows, f"Paste {len(block):,} rows", cells=changes)
            )
        elif changes:
            self._push_edit(changes, f"Paste {len(block):,}×{max(len(r) for r in block)} cells")
        note = f"Pasted {sum(len(r) for r in block):,} cells"
        if new_cells:
            note += f", {len(new_cells):,} new rows"
        if dropped:
            note += f"; {dropped:,} cells beyond the last column were left out"
        self._say(note + ".")

    # -- dropping files ----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if files_in(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        if files_in(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        self.handle_drop(event.mimeData())
        event.acceptProposedAction()

    def handle_drop(self, mime: QMimeData) -> bool:
        """Open the first lead file in ``mime`` (the window may forward its own drops here)."""
        paths = files_in(mime)
        if not paths:
            self._say("Drop a CSV, TSV, TXT or XLSX file to open it.", error=True)
            return False
        if len(paths) > 1:
            self._say(f"Opening {paths[0].name}; drop the other files one at a time.")
        self.open_file(paths[0])
        return True

    # -- editing -----------------------------------------------------------------------------

    def _push_edit(self, changes: list[tuple[int, int, str, str]], text: str) -> None:
        changes = [c for c in changes if c[2] != c[3]]
        if not changes:
            return
        if self._busy:
            self._say(f"Wait a moment: {self._busy}")
            return
        self.undo_stack.push(SetCellsCommand(self.model, changes, text))

    def _selected_cells(self) -> list[QModelIndex]:
        return sorted(
            self.view.selectionModel().selectedIndexes(), key=lambda i: (i.row(), i.column())
        )

    def copy_selection(self) -> None:
        cells = self._selected_cells()
        if not cells:
            return
        rows = sorted({i.row() for i in cells})
        cols = sorted({i.column() for i in cells})
        chosen = {(i.row(), i.column()) for i in cells}
        block = [
            [self.model.row_at(r).cell(c) if (r, c) in chosen else "" for c in cols] for r in rows
        ]
        # setText, not setMimeData: a QMimeData made in Python and owned by the clipboard
        # would be destroyed by Qt after Python has shut down, crashing the exit.
        QApplication.clipboard().setText(to_tsv(block))

    def clear_selected_cells(self) -> None:
        changes = []
        for index in self._selected_cells():
            row = self.model.row_at(index.row())
            if not row.queueing:
                changes.append((row.id, index.column(), row.cell(index.column()), ""))
        self._push_edit(changes, f"Clear {len(changes):,} cells")

    def remove_selected_rows(self) -> None:
        positions = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        ids = [self.model.row_at(p).id for p in positions if not self.model.row_at(p).queueing]
        if not ids or self._busy:
            return
        self.undo_stack.push(RemoveRowsCommand(self.model, ids, f"Remove {len(ids):,} rows"))
        self._say(f"Removed {len(ids):,} rows (Undo brings them back).")

    def clear(self) -> None:
        """Empty the grid (undoable)."""
        if self._busy or not self.model.total():
            return
        if self._pending:
            self._say("Wait until the leads being queued are stored.", error=True)
            return
        count = self.model.total()
        self.undo_stack.push(ResetCommand(self.model, GridState(), "Clear grid"))
        self._say(f"Cleared {count:,} rows (Undo brings them back).")

    def apply_fix(self, row_id: int, problem: Problem) -> bool:
        """Put a problem's suggested value into its cell (one undo step)."""
        fix = problem.fix
        column = self.model.column_of(problem.field)
        row = self.model.row_by_id(row_id)
        if fix is None or row is None:
            return False
        if column is None:
            self._say(
                f"Map a column to {problem.field} first; then the fix can go into it.", error=True
            )
            return False
        if len(self.model.columns_of(problem.field)) > 1:
            self._say(
                f"{problem.field} is made of several columns; change them by hand.", error=True
            )
            return False
        self._push_edit([(row_id, column, row.cell(column), fix.value)], f"Fix: {fix.label}")
        return True

    def apply_all_fixes(self) -> None:
        """Every suggested fix in the grid, as one undo step."""
        changes: list[tuple[int, int, str, str]] = []
        seen: set[tuple[int, int]] = set()
        for entry in self.problems.entries():
            fix = entry.problem.fix
            column = self.model.column_of(entry.problem.field)
            row = self.model.row_by_id(entry.row_id)
            if fix is None or column is None or row is None or row.queueing:
                continue
            if len(self.model.columns_of(entry.problem.field)) > 1:
                continue
            if (row.id, column) in seen:
                continue
            seen.add((row.id, column))
            changes.append((row.id, column, row.cell(column), fix.value))
        if not changes:
            self._say("There are no suggested fixes to apply.")
            return
        self._push_edit(changes, f"Apply {len(changes):,} suggested fixes")
        self._say(f"Applied {len(changes):,} suggested fixes (Undo takes them back).")

    def _fix_clicked(self, index: QModelIndex) -> None:
        entry = self.problems.entry(index.row())
        self.apply_fix(entry.row_id, entry.problem)

    def _problem_clicked(self, index: QModelIndex) -> None:
        entry = self.problems.entry(index.row())
        column = self.model.column_of(entry.problem.field)
        target = self.model.index_of(entry.row_id, column if column is not None else 0)
        if not target.isValid():
            return
        self.view.setCurrentIndex(target)
        self.view.selectionModel().select(target, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.view.scrollTo(target, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _context_menu(self, point: QPoint) -> None:
        index = self.view.indexAt(point)
        menu = QMenu(self)
        if index.isValid():
            row = self.model.row_at(index.row())
            for problem in self.model._marks(row).get(index.column(), []):
                if problem.fix is not None:
                    act = menu.addAction(f"Fix: {problem.fix.label}")
                    act.triggered.connect(
                        lambda _c=False, r=row.id, p=problem: self.apply_fix(r, p)
                    )
        menu.addAction("Copy", self.copy_selection)
        menu.addAction(self.paste_action)
        menu.addSeparator()
        menu.addAction(self.remove_action)
        menu.popup(self.view.viewport().mapToGlobal(point))

    # -- mapping and header ------------------------------------------------------------------

    def _mapping_picked(self, column: int, target: str | None) -> None:
        if self._busy:
            self.header.set_mapping(self.model.mapping)
            self._say(f"Wait a moment: {self._busy}")
            return
        mapping = self.model.mapping
        if column >= len(mapping) or mapping[column] == target:
            return
        if target is not None and self._exclusive(target):
            mapping = [None if m == target else m for m in mapping]
        mapping[column] = target
        title = self.model.titles[column]
        text = f"Send “{title}” as {target}" if target else f"Do not send “{title}”"
        self.undo_stack.push(MappingCommand(self.model, mapping, text, self._mapping_changed))

    def _exclusive(self, target: str) -> bool:
        """Phone and system fields take one column; text fields may join several (a space
        between), as "First name" + "Surname" into Name."""
        layout = self._layout or default_layout()
        return target in layout.phone_fields or target in SYSTEM_FIELDS

    def _mapping_changed(self, mapping: list[str | None]) -> None:
        self.header.set_mapping(mapping)
        self.problems.refresh_text()
        header = self.model.header
        key = mapping_key(header if header is not None else self.model.titles, header is not None)
        self._saved[key] = list(mapping)
        self.mapping_saved.emit(key, list(mapping))

    def _header_toggled(self, on: bool) -> None:
        model = self.model
        if self._busy or (model.header is not None) == on or not model.total():
            self._sync_controls()
            return
        state = model.state()
        if on:
            first = state.rows[0]
            header = [c.strip() for c in first.cells] + [""] * (
                len(state.titles) - len(first.cells)
            )
            layout = self._layout or default_layout()
            sample = [r.cells for r in state.rows[1:21]]
            mapping = detect_mapping(header, layout, self._saved, sample)[1].to_list()
            titles = [h or column_title(c) for c, h in enumerate(header)]
            new = GridState(titles, header, mapping, state.rows[1:])
            text = "Read the first row as the header"
        else:
            header = state.header or []
            row = model.new_rows([header], self._source, 0)[0]
            titles = [column_title(c) for c in range(len(state.titles))]
            new = GridState(titles, None, state.mapping, [row, *state.rows])
            text = "Read the header as a row"
        self.undo_stack.push(ResetCommand(model, new, text))

    def _filter_toggled(self, on: bool) -> None:
        self.model.set_filter(on)
        self._sync_controls()

    # -- checking ----------------------------------------------------------------------------

    def _structure_changed(self) -> None:
        self._structure_gen += 1
        self.header.set_mapping(self.model.mapping)
        self.problems.refresh_text()
        self._schedule_check(0, refilter=True)
        self._sync_controls()

    def _cells_edited(self, row_ids: list[int]) -> None:
        validator = self._validator
        if validator is not None and len(row_ids) <= QUICK_CHECK_ROWS:
            mapping = self.model.mapping
            for row_id in row_ids:
                row = self.model.row_by_id(row_id)
                if row is None:
                    continue
                number = self.model.grid_number(row_id)
                try:
                    check = check_rows(validator, mapping, [row])
                except Exception:
                    log.exception("checking row %s failed", number)
                    continue
                _rid, version, lead_check = check.checks[0]
                self.model.set_row_check(row_id, version, lead_check)
                self.problems.replace_row(row_id, lead_check.problems)
        self._schedule_check(RECHECK_DELAY_MS)
        self._sync_controls()

    def _schedule_check(self, delay: int, *, refilter: bool = False) -> None:
        if self._validator is None:
            return
        self._check_dirty = True
        self._refilter = self._refilter or refilter
        self._check_timer.start(delay)
        self._sync_controls()

    def _start_full_check(self) -> None:
        if self._busy:
            self._check_timer.start(RECHECK_DELAY_MS)
            return
        if self._check_task is not None and not self._check_task.done():
            return  # the running check loops again while ``_check_dirty``
        self._check_task = self.tasks.spawn(self._full_check(), name="check grid")

    async def _full_check(self) -> None:
        try:
            while self._check_dirty and self._validator is not None:
                self._check_dirty = False
                validator = self._validator
                generation = self._structure_gen
                mapping = self.model.mapping
                self._sync_controls()
                result = await in_worker(check_rows, validator, mapping, self.model.all_rows())
                if generation != self._structure_gen or validator is not self._validator:
                    self._check_dirty = True
                    continue
                refilter = self._refilter
                self._refilter = False
                await self._apply_check(result, refilter=refilter)
                if generation != self._structure_gen:
                    self._check_dirty = True
        finally:
            self._check_task = None
            self._sync_controls()

    async def _apply_check(self, result: CheckResult, *, refilter: bool) -> None:
        """Store a check of the whole grid, a chunk at a time so the window keeps painting."""
        checks = result.checks
        applied = 0
        for start in range(0, len(checks), APPLY_CHUNK):
            applied += self.model.set_checks(
                checks[start : start + APPLY_CHUNK], refilter=refilter, announce=False, near=start
            )
            if start + APPLY_CHUNK < len(checks):
                await asyncio.sleep(0)
        self.model.checks_applied(refilter=refilter)
        if applied == len(checks) and not self._pending:
            self.problems.reset(result.entries)
        else:
            self.problems.rebuild()
        self._sync_controls()
        self.checked.emit()

    @property
    def checking(self) -> bool:
        """Whether a check of the whole grid is due or running."""
        running = self._check_task is not None and not self._check_task.done()
        return running or self._check_dirty

    # -- queueing ----------------------------------------------------------------------------

    def request_queue(self) -> None:
        """The "Queue N leads" button: a summary first, then the valid rows go to the queue."""
        if not self._target_ready:
            self._say("Choose a template, campaign and allocation above first.", error=True)
            return
        if self.checking or self._busy:
            self._say("The rows are still being checked; try again in a moment.")
            return
        clean, warned, blocked, _unchecked = self.model.summary()
        count = clean + warned
        if not count:
            self._say("No row is ready yet: fix the problems marked in red first.", error=True)
            return
        box = QMessageBox(self)
        box.setObjectName("queueSummary")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Queue leads")
        box.setText(f"Queue {count:,} leads?")
        lines = [f"• {clean:,} valid"]
        if warned:
            lines.append(f"• {warned:,} with warnings (sent as they are; see the amber cells)")
        if blocked:
            lines.append(f"• {blocked:,} blocked by errors stay in the grid to be fixed")
        box.setInformativeText("\n".join(lines))
        accept = box.addButton(f"Queue {count:,} leads", QMessageBox.ButtonRole.AcceptRole)
        accept.setObjectName("confirmQueue")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(accept)
        box.buttonClicked.connect(
            lambda button: self._queue_confirmed() if button is accept else None
        )
        self.summary_dialog = box
        box.open()

    def _queue_confirmed(self) -> None:
        self.summary_dialog = None
        if self._pending or self.checking or self._busy:
            self._say("The rows changed; press Queue again.")
            return
        ready = [
            r
            for r in self.model.all_rows()
            if not r.queueing and r.check is not None and r.check.ok and r.current
        ]
        if not ready:
            return
        ids = [r.id for r in ready]
        self._pending.update(ids)
        self.model.set_queueing(ids, True)
        self._sync_controls()
        self.tasks.spawn(self._hand_over(ready), name="queue grid rows")

    async def _hand_over(self, rows: list[GridRow]) -> None:
        leads = await in_worker(_grid_leads, rows)
        self._say(f"Queueing {len(leads):,} leads…")
        self.queue_requested.emit(leads, self._source or "Pasted rows")

    # -- display -----------------------------------------------------------------------------

    def _fit_columns(self) -> None:
        """Widths from the titles and the first rows (Qt's own sizing reads far more rows)."""
        metrics = self.view.fontMetrics()
        sample = [self.model.row_at(r) for r in range(min(self.model.rowCount(), 60))]
        for column in range(self.model.columnCount()):
            title = self.model.titles[column]
            widest = max(
                [metrics.horizontalAdvance(title) + 24]
                + [metrics.horizontalAdvance(row.cell(column)) + 16 for row in sample]
            )
            self.view.setColumnWidth(column, max(150, min(widest, 260)))

    def _set_busy(self, text: str) -> None:
        was = bool(self._busy)
        self._busy = text
        if text:
            self.status.setText(text)
            self.status.setStyleSheet("")
        if was != bool(text):
            self._sync_controls()

    def _progress(self, text: str) -> None:
        """A new step of the running load: only the status line changes."""
        self._busy = text
        self.status.setText(text)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {MARKS[ERROR]};" if error else "")
        self.status_changed.emit(text)

    def _update_summary(self) -> None:
        self._sync_controls()

    def _sync_controls(self) -> None:
        model = self.model
        busy = bool(self._busy)
        has_rows = model.total() > 0
        clean, warned, blocked, _unchecked = model.summary()
        count = clean + warned
        checking = self.checking
        if has_rows:
            parts = [f"{model.total():,} rows"]
            if self._validator is not None:
                parts += [f"{clean:,} ready", f"{warned:,} with warnings", f"{blocked:,} blocked"]
            if self._pending:
                parts.append(f"{len(self._pending):,} being queued")
            self.counts.setText(" · ".join(parts) + ("  (checking…)" if checking else ""))
        else:
            self.counts.setText("")
        self.queue_button.setText(f"Queue {count:,} leads" if count else "Queue leads")
        self.queue_button.setEnabled(
            self._target_ready and count > 0 and not busy and not checking and not self._pending
        )
        if not self._target_ready:
            self.queue_button.setToolTip("Choose a template, campaign and allocation first.")
        elif checking:
            self.queue_button.setToolTip("The rows are being checked…")
        else:
            self.queue_button.setToolTip(
                f"{count:,} leads can be queued; {blocked:,} rows need fixing first."
            )
        errors, warnings = self.problems.counts()
        self.problem_title.setText(
            f"Problems: {errors:,} errors, {warnings:,} warnings"
            if errors or warnings
            else "Problems: none"
        )
        fixes = self.problems.fixes
        self.fix_all_button.setText(
            f"Apply all {fixes:,} suggested fixes" if fixes else "Apply all suggested fixes"
        )
        self.fix_all_button.setEnabled(fixes > 0 and not busy)
        self.header_box.blockSignals(True)
        self.header_box.setChecked(model.header is not None)
        self.header_box.blockSignals(False)
        self.header_box.setEnabled(has_rows and not busy and not self._pending)
        self.filter_box.blockSignals(True)
        self.filter_box.setChecked(model.filtered)
        self.filter_box.blockSignals(False)
        self.filter_box.setText(
            f"Only rows with &problems ({warned + blocked:,})"
            if warned or blocked
            else "Only rows with &problems"
        )
        self.clear_button.setEnabled(has_rows and not busy)
        self.open_action.setEnabled(not busy)
        self.paste_action.setEnabled(not busy)
        self.header.setEnabled(not busy)
        triggers = (
            QAbstractItemView.EditTrigger.NoEditTriggers
            if busy
            else QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.view.setEditTriggers(triggers)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self.model.set_dark(self.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        super().changeEvent(event)

    def showEvent(self, event: Any) -> None:
        self.model.set_dark(self.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        super().showEvent(event)


def _grid_leads(rows: list[GridRow]) -> list[GridLead]:
    leads = []
    for row in rows:
        check = row.check
        assert check is not None
        leads.append(GridLead(row.id, dict(check.fields), frozenset(check.phones), row.source_row))
    return leads


def _problem_message(problem: Any) -> str:
    message = getattr(problem, "message", None)
    return str(message if message is not None else problem)
