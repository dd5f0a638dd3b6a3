"""The batch grid's table and its row numbers, painted from Python in one go."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionRange, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyleOptionHeader,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from noojee_desk.ui.grid.marks import SeverityRole, severity_icon
from noojee_desk.ui.grid.model import BatchModel


class GridView(QTableView):
    """The table: Ctrl+V / Ctrl+C / Delete like a spreadsheet, a hint while it is empty."""

    paste_requested = Signal()
    copy_requested = Signal()
    clear_requested = Signal()

    hint = (
        "Copy rows in Excel, Google Sheets or LibreOffice and press Ctrl+V here,\n"
        "or open a CSV, TSV or XLSX file, or drop it on this window."
    )

    #: Rows the table keeps room for however the window divides its height, where the screen
    #: has room for them: ``OTHER_PARTS`` pixels of the screen's free height go to the rest of
    #: the window (pickers, form controls, the queue's least), so a 1366x768 laptop at 150 %
    #: still fits the window, with ``FEWEST_ROWS`` at least.
    MIN_ROWS = 10
    FEWEST_ROWS = 3
    OTHER_PARTS = 440

    def min_rows(self) -> int:
        screen = self.screen()
        free = screen.availableGeometry().height() if screen is not None else 1080
        return self.rows_for(free)

    def rows_for(self, screen_height: int) -> int:
        chrome = self.horizontalHeader().sizeHint().height()
        chrome += self.horizontalScrollBar().sizeHint().height() + 2 * self.frameWidth()
        room = screen_height - self.OTHER_PARTS - chrome
        fit = room // max(1, self.verticalHeader().defaultSectionSize())
        return max(self.FEWEST_ROWS, min(self.MIN_ROWS, fit))

    def minimumSizeHint(self) -> QSize:
        """Room for the mapping row and ``min_rows()`` rows: a splitter above the grid may not
        squeeze the table below that."""
        hint = super().minimumSizeHint()
        header = self.horizontalHeader().sizeHint().height()
        rows = self.verticalHeader().defaultSectionSize() * self.min_rows()
        scroll = self.horizontalScrollBar().sizeHint().height()
        height = header + rows + scroll + 2 * self.frameWidth()
        return QSize(hint.width(), max(hint.height(), height))

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

    def fit_columns(self) -> None:
        """Widths from the titles and the first rows (Qt's own sizing reads far more rows)."""
        model = self.model()
        if not isinstance(model, BatchModel):
            return
        metrics = self.fontMetrics()
        sample = [model.row_at(r) for r in range(min(model.rowCount(), 60))]
        for column in range(model.columnCount()):
            title = model.titles[column]
            widest = max(
                [metrics.horizontalAdvance(title) + 24]
                + [metrics.horizontalAdvance(row.cell(column)) + 16 for row in sample]
            )
            self.setColumnWidth(column, max(150, min(widest, 260)))

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
            (r.top(), r.left(), r.bottom(), r.right())
            for r in _ranges(self.selectionModel().selection())
        ]
        palette = self.palette()
        text_colour = palette.color(QPalette.ColorRole.Text)
        chosen_text = palette.color(QPalette.ColorRole.HighlightedText)
        chosen = palette.color(QPalette.ColorRole.Highlight)
        metrics = self.fontMetrics()
        align = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        colours: dict[str, QColor] = {}
        icons: dict[str, QIcon] = {}
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
                room = width - 9
                if background is not None:
                    # Colour is never the only sign: the cell carries the severity's mark too.
                    severity = model.cell_severity(row, c)
                    if severity is not None:
                        icons.setdefault(severity, severity_icon(severity)).paint(
                            painter, QRect(x + width - 16, y + (height - 12) // 2, 12, 12)
                        )
                        room -= 16
                if text:
                    if "\n" in text or "\r" in text:
                        text = " ↵ ".join(text.splitlines())
                    painter.setPen(pen)
                    painter.drawText(
                        QRect(x + 4, y, max(room + 1, 1), height - 1),
                        align,
                        metrics.elidedText(text, Qt.TextElideMode.ElideRight, room),
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
        widest = model.widest_number() if isinstance(model, BatchModel) else 0
        count = model.rowCount() if model is not None else 1
        digits = len(str(max(count, widest, 1)))
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
            [(r.top(), r.bottom()) for r in _ranges(selection.selection())]
            if selection is not None
            else []
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


def _ranges(selection: QItemSelection) -> list[QItemSelectionRange]:
    """The ranges of a selection (PySide6's stubs do not know it is iterable)."""
    return [selection.at(i) for i in range(selection.count())]
