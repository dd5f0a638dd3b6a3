"""How the grid marks problems: the item roles its models answer, and the severity icons."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap, QPolygonF

from noojee_desk.core.leads.validate import ERROR
from noojee_desk.ui.theme import MARKS

SeverityRole = Qt.ItemDataRole.UserRole + 1
RowIdRole = Qt.ItemDataRole.UserRole + 2
FixRole = Qt.ItemDataRole.UserRole + 3


def _icon(severity: str) -> QIcon:
    """Shape and glyph tell the two apart without colour: a round mark with a white cross for
    errors, a triangle with a dark "!" for warnings; a thin outline keeps either visible on a
    tinted cell of a light or a dark palette."""
    icon = QIcon()
    for scale in (1, 2):
        pix = QPixmap(12 * scale, 12 * scale)
        pix.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pix)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.scale(scale, scale)
        painter.setPen(QPen(QColor("#1f1f1f" if severity != ERROR else "#ffffff"), 0.8))
        painter.setBrush(QColor(MARKS[severity]))
        if severity == ERROR:
            painter.drawEllipse(QPointF(6, 6), 5.4, 5.4)
            painter.setPen(QPen(QColor("#ffffff"), 1.6, c=Qt.PenCapStyle.RoundCap))
            painter.drawLine(QPointF(4, 4), QPointF(8, 8))
            painter.drawLine(QPointF(8, 4), QPointF(4, 8))
        else:
            painter.drawPolygon(
                QPolygonF([QPointF(6, 0.6), QPointF(11.6, 11.2), QPointF(0.4, 11.2)])
            )
            painter.setPen(QPen(QColor("#1f1f1f"), 1.5, c=Qt.PenCapStyle.RoundCap))
            painter.drawLine(QPointF(6, 4.2), QPointF(6, 7.4))
            painter.drawPoint(QPointF(6, 9.4))
        painter.end()
        pix.setDevicePixelRatio(scale)
        icon.addPixmap(pix)
    return icon


_ICONS: dict[str, QIcon] = {}


def severity_icon(severity: str) -> QIcon:
    """A red round mark with a cross for errors, an amber triangle with "!" for warnings."""
    icon = _ICONS.get(severity)
    if icon is None:
        icon = _ICONS[severity] = _icon(severity)
    return icon
