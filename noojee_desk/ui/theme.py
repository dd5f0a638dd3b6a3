"""Status colours that stay readable on the system's light or dark palette."""

from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette

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


def tone(kind: str) -> str:
    """The colour (as #rrggbb) for ``kind``: ok, error, warning, info or muted."""
    light, dark = _TONES[kind]
    return dark if is_dark() else light


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


def banner_colours(kind: str) -> tuple[str, str]:
    """(background, text colour) of a banner of ``kind``: demo, info, warning or error."""
    return _BANNERS[kind]


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
