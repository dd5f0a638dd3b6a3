"""How the grid marks problems: the item roles its models answer, and the severity icons."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QPolygonF

from noojee_desk.core.leads.validate import ERROR
from noojee_desk.ui.theme import MARKS

SeverityRole = Qt.ItemDataRole.UserRole + 1
RowIdRole = Qt.ItemDataRole.UserRole + 2
FixRole = Qt.ItemDataRole.UserRole + 3


def _icon(severity: str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(MARKS[severity]))
    if severity == ERROR:
        painter.drawEllipse(1, 1, 10, 10)
    else:
        painter.drawPolygon(QPolygonF([QPointF(6, 0.5), QPointF(11.5, 11), QPointF(0.5, 11)]))
    painter.end()
    return QIcon(pix)


_ICONS: dict[str, QIcon] = {}


def severity_icon(severity: str) -> QIcon:
    """A red dot for errors, an amber triangle for warnings."""
    icon = _ICONS.get(severity)
    if icon is None:
        icon = _ICONS[severity] = _icon(severity)
    return icon
