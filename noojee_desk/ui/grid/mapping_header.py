"""The batch grid's column header: a drop-down above each title chooses the field it is sent as."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QComboBox, QHeaderView, QStyle, QStyleOptionHeader, QWidget

from noojee_desk.ui.theme import MUTED

NOT_SENT = "— not sent —"


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


class MappingCombo(QComboBox):
    """A column's field: by keyboard the list opens first (an arrow key on a closed drop-down
    would change the field at once, and moving a phone field takes it off another column);
    ``closed`` fires when the list closes, chosen or not."""

    closed = Signal()
    escaped = Signal()  # Escape on the closed drop-down: back to the table

    _OPENING = frozenset(
        {
            Qt.Key.Key_Up,
            Qt.Key.Key_Down,
            Qt.Key.Key_PageUp,
            Qt.Key.Key_PageDown,
            Qt.Key.Key_Home,
            Qt.Key.Key_End,
            Qt.Key.Key_Return,
            Qt.Key.Key_Enter,
        }
    )

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        if event.key() in self._OPENING or (event.text().strip() and not event.modifiers()):
            self.showPopup()
            return
        super().keyPressEvent(event)

    def hidePopup(self) -> None:
        super().hidePopup()
        self.closed.emit()


class MappingHeader(QHeaderView):
    """The column header with the mapping row: a drop-down above each column's title."""

    picked = Signal(int, object)  # column, target field (None: not sent)
    done = Signal()  # a drop-down opened by keyboard closed, or Escape: back to the table

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
        self._titles: dict[str, str] = {}
        self._phones: frozenset[str] = frozenset()
        self._required: frozenset[str] = frozenset()
        self._mapping: list[str | None] = []
        self._wheel_guard = _NoWheelUnlessFocused(self)
        self._keyboard: QComboBox | None = None  # opened by ``open_field``
        #: The keys that open a column's drop-down from the table, for its tooltip.
        self.keys_hint = ""
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

    def open_field(self, column: int) -> bool:
        """Open the drop-down of ``column`` for the keyboard (``done`` fires once it closes)."""
        if not 0 <= column < len(self._combos) or not self.isEnabled():
            return False
        combo = self._combos[column]
        self._keyboard = combo
        combo.setFocus(Qt.FocusReason.ShortcutFocusReason)
        combo.showPopup()
        return True

    def _closed(self, combo: QComboBox) -> None:
        if self._keyboard is combo:
            self._keyboard = None
            self.done.emit()

    def set_choices(
        self,
        names: Sequence[str],
        phones: Sequence[str],
        required: Sequence[str],
        titles: Mapping[str, str] | None = None,
    ) -> None:
        """The fields a column can be sent as (keys); ``titles`` are what people see for them."""
        self._choices = list(names)
        self._titles = dict(titles or {})
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
            model = self.model()
            title = model.headerData(column, Qt.Orientation.Horizontal) if model else None
            if title:
                combo.setAccessibleName(f"Field for column {title}")
            combo.blockSignals(False)

    def _tip(self, column: int, target: str | None) -> str:
        tip = self._what(column, target)
        return f"{tip} ({self.keys_hint} in the column)" if self.keys_hint else tip

    def _what(self, column: int, target: str | None) -> str:
        model = self.model()
        title = model.headerData(column, Qt.Orientation.Horizontal) if model is not None else ""
        if target is None:
            return f"Column “{title}” is not sent. Choose the template field it holds."
        shown = self._titles.get(target, target)
        if shown != target:
            return f"Column “{title}” is sent as the field {shown} ({target})."
        return f"Column “{title}” is sent as the field {target}."

    def _label(self, name: str) -> str:
        marks = (" ☎" if name in self._phones else "") + (" *" if name in self._required else "")
        return self._titles.get(name, name) + marks

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
            combo = MappingCombo(self.viewport())
            combo.setObjectName(f"mapColumn{column}")
            combo.setAccessibleName(f"Field for column {column + 1}")
            combo.closed.connect(lambda c=combo: self._closed(c))
            combo.escaped.connect(self.done)
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
