"""Status colours and icons that follow the system's palette: light, dark or high contrast."""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QPen, QPixmap

#: (on a light window, on a dark window)
_TONES = {
    "ok": ("#1b7f3b", "#6fdc8c"),
    "error": ("#b3261e", "#ff8a80"),
    "warning": ("#8a5a00", "#ffd166"),
    "info": ("#2f6fbd", "#8ab4f8"),
    "muted": ("#6b6b6b", "#a8a8a8"),
}


def is_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def qcolor(kind: str) -> QColor:
    return QColor(tone(kind))


def style(kind: str) -> str:
    """A style sheet fragment that colours a label's text."""
    return f"color: {tone(kind)};"


#: Banner strips: (background, text). Both are set, so a banner reads the same on a light or a
#: dark window.
_BANNERS = {
    "demo": ("#fff4ce", "#5c4400"),
    "info": ("#e7f0fb", "#12365c"),
    "warning": ("#fcd9b6", "#5c2e00"),
    "error": ("#fde7e9", "#7a1620"),
}


# -- the batch grid's problem marks (fixed tones, each pair chosen for a light and a dark base) ---

#: Cell tints by problem severity: (light palette, dark palette).
TINTS = {
    "error": ("#f9d0d3", "#6a2229"),
    "warning": ("#fde9b0", "#5a4710"),
}
#: Text on a tinted cell: (light palette, dark palette).
TINTED_TEXT = ("#1f1f1f", "#f2f2f2")
#: Strong colours for icons and the side list, readable on light and dark backgrounds.
MARKS = {"error": "#d13438", "warning": "#e5a100"}
#: Text of columns that are not sent and of rows being queued.
MUTED = "#8a8a8a"


# -- following the system: dark and high-contrast palettes, state icons ---------------------------


def lightness(colour: str) -> int:
    return QColor(colour).lightness()


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in (colour.redF(), colour.greenF(), colour.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: QColor, second: QColor) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    a, b = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def is_high_contrast() -> bool:
    """The system asks for more contrast (Qt's accessibility hint), or its palette is one of
    the high-contrast ones (pure black on white or white on black)."""
    app = QGuiApplication.instance()
    if app is None:
        return False
    hints = QGuiApplication.styleHints()
    accessibility = getattr(hints, "accessibility", None)
    if accessibility is not None:
        with contextlib.suppress(AttributeError, RuntimeError):
            preference = accessibility().contrastPreference()
            if preference == Qt.ContrastPreference.HighContrast:
                return True
    palette = QGuiApplication.palette()
    window = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    return contrast(window, text) >= 19.5


#: Banner strips on a dark window: (background, text).
_DARK_BANNERS = {
    "demo": ("#4a3c00", "#fff1b8"),
    "info": ("#15314f", "#d6e6fa"),
    "warning": ("#5a3000", "#ffe0c0"),
    "error": ("#5c1018", "#ffd9dc"),
}


def banner_colours(kind: str) -> tuple[str, str]:
    """(background, text colour) of a banner of ``kind``: demo, info, warning or error.

    A high-contrast palette keeps its own colours (the banner's icon and words say the kind);
    a dark one gets dark strips with light text; a light one light strips with dark text."""
    if is_high_contrast():
        palette = QGuiApplication.palette()
        return (
            palette.color(QPalette.ColorRole.Window).name(),
            palette.color(QPalette.ColorRole.WindowText).name(),
        )
    return _DARK_BANNERS[kind] if is_dark() else _BANNERS[kind]


def tone(kind: str) -> str:
    """The colour (as #rrggbb) for ``kind``: ok, error, warning, info or muted; in high contrast
    the palette's own text colour (the words and marks carry the meaning)."""
    if is_high_contrast():
        return QGuiApplication.palette().color(QPalette.ColorRole.WindowText).name()
    light, dark = _TONES[kind]
    return dark if is_dark() else light


#: The mark drawn on each state's icon, so that the state never rests on its colour alone.
_MARKS = {"ok": "check", "error": "bang", "warning": "bang", "info": "i", "muted": "bars"}


def state_icon(kind: str, mark: str | None = None, size: int = 16) -> QPixmap:
    """A round icon in ``kind``'s colour with a mark (check, bang, i, bars, cross, dots)."""
    screen = QGuiApplication.primaryScreen() if QGuiApplication.instance() else None
    ratio = screen.devicePixelRatio() if screen is not None else 1.0
    pixmap = QPixmap(int(size * ratio), int(size * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    fill = QColor(_TONES[kind][0] if kind in _TONES else MARKS.get(kind, "#6b6b6b"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(fill)
    painter.drawEllipse(QRectF(1, 1, size - 2, size - 2))
    pen = QPen(QColor("#ffffff"), max(1.6, size / 8))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    s = float(size)
    what = mark or _MARKS.get(kind, "i")
    if what == "check":
        painter.drawPolyline([QPointF(s * 0.28, s * 0.52), QPointF(s * 0.44, s * 0.68),
                              QPointF(s * 0.72, s * 0.34)])  # fmt: skip
    elif what == "bang":
        painter.drawLine(QPointF(s / 2, s * 0.26), QPointF(s / 2, s * 0.58))
        painter.drawPoint(QPointF(s / 2, s * 0.74))
    elif what == "i":
        painter.drawPoint(QPointF(s / 2, s * 0.28))
        painter.drawLine(QPointF(s / 2, s * 0.44), QPointF(s / 2, s * 0.74))
    elif what == "bars":
        painter.drawLine(QPointF(s * 0.38, s * 0.3), QPointF(s * 0.38, s * 0.7))
        painter.drawLine(QPointF(s * 0.62, s * 0.3), QPointF(s * 0.62, s * 0.7))
    elif what == "cross":
        painter.drawLine(QPointF(s * 0.33, s * 0.33), QPointF(s * 0.67, s * 0.67))
        painter.drawLine(QPointF(s * 0.67, s * 0.33), QPointF(s * 0.33, s * 0.67))
    elif what == "dots":
        for x in (0.3, 0.5, 0.7):
            painter.drawPoint(QPointF(s * x, s / 2))
    painter.end()
    return pixmap


def high_contrast_sheet() -> str:
    """Borders in the palette's text colour: styles draw frames a shade off the window colour,
    which vanishes on a high-contrast black (or white) window."""
    palette = QGuiApplication.palette()
    text = palette.color(QPalette.ColorRole.WindowText).name()
    focus = palette.color(QPalette.ColorRole.Highlight).name()
    boxes = "QLineEdit, QComboBox, QSpinBox, QDateTimeEdit, QPushButton, QToolButton"
    return (
        f"{boxes} {{ border: 1px solid {text}; padding: 2px 4px; }}\n"
        f"QLineEdit:focus, QComboBox:focus, QSpinBox:focus, QDateTimeEdit:focus, "
        f"QPushButton:focus, QToolButton:focus {{ border: 2px solid {focus}; }}\n"
        f"QCheckBox::indicator {{ border: 1px solid {text}; width: 13px; height: 13px; }}\n"
        f"QCheckBox::indicator:checked {{ background: {text}; }}\n"
        f"QGroupBox, QTabWidget::pane, QTableView {{ border: 1px solid {text}; }}\n"
        "QGroupBox { margin-top: 1.4em; padding-top: 4px; }\n"
        "QGroupBox::title { subcontrol-origin: margin; left: 6px; }\n"
    )


def follow_system(app: QGuiApplication) -> None:
    """Apply what the system's palette asks for now (a high-contrast one gets visible frames);
    call again after the palette changes. Only the app's own sheet is replaced."""
    sheet = high_contrast_sheet() if is_high_contrast() else ""
    setter = getattr(app, "setStyleSheet", None)
    if setter is not None and app.property("noojeeHighContrast") != bool(sheet):
        setter(sheet)
        app.setProperty("noojeeHighContrast", bool(sheet))
