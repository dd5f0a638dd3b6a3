"""What a screen reader finds: every interactive control of the main window (both entry tabs,
with the grid), the connect dialog and the layout dialog has a name, no two visible mnemonics of
one window clash, and colour is never the only signal."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest
from helpers.waits import until
from PySide6.QtGui import QAccessible, QAccessibleInterface, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QGroupBox,
    QLabel,
    QTabBar,
    QWidget,
)
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.dispatcher import QueueFigures
from noojee_desk.core.leads.layouts import default_layout
from noojee_desk.ui import theme
from noojee_desk.ui.banner import Banner, BannerReason
from noojee_desk.ui.connect_dialog import ConnectDialog
from noojee_desk.ui.layout_dialog import LayoutDialog
from noojee_desk.ui.main_window import MainWindow
from noojee_desk.ui.status_bar import StatusBar

Role = QAccessible.Role
#: Roles a person operates (they need a name to be found by a screen reader).
INTERACTIVE = {
    Role.PushButton,
    Role.CheckBox,
    Role.RadioButton,
    Role.ComboBox,
    Role.EditableText,
    Role.SpinBox,
    Role.Slider,
    Role.PageTab,
    Role.ButtonMenu,
    Role.ButtonDropDown,
    Role.Table,
    Role.List,
    Role.Tree,
}


def walk(iface: QAccessibleInterface, depth: int = 0) -> Iterator[QAccessibleInterface]:
    """``iface`` and every visible descendant, through QAccessible alone."""
    if depth > 40 or iface.state().invisible:
        return
    yield iface
    for index in range(iface.childCount()):
        child = iface.child(index)
        if child is not None and child.isValid():
            yield from walk(child, depth + 1)


def unnamed_controls(window: QWidget) -> list[str]:
    root = QAccessible.queryAccessibleInterface(window)
    assert root is not None
    assert root.isValid()
    missing = []
    for iface in walk(root):
        role = iface.role()
        if role not in INTERACTIVE:
            continue
        if role in (Role.Table, Role.List, Role.Tree) and iface.object() is None:
            continue
        if not iface.text(QAccessible.Text.Name).strip():
            obj = iface.object()
            where = obj.objectName() if obj is not None else "?"
            parent = obj.parent() if obj is not None else None
            owner = parent.objectName() if parent is not None else ""
            tip = obj.toolTip() if isinstance(obj, QWidget) else ""
            missing.append(f"{role.name} {where or type(obj).__name__} in {owner} {tip}")
    return missing


_MNEMONIC = re.compile(r"(?<!&)&([^&\s])")


def mnemonics(window: QWidget) -> Counter[str]:
    """The &-letters a person can press with Alt in ``window`` as it is shown now."""
    found: Counter[str] = Counter()

    def add(text: str) -> None:
        for letter in _MNEMONIC.findall(text.replace("&&", "")):
            found[letter.lower()] += 1

    for widget in window.findChildren(QWidget):
        if not widget.isVisibleTo(window) or widget.window() is not window:
            continue
        if isinstance(widget, QAbstractButton) or (
            isinstance(widget, QLabel) and widget.buddy() is not None
        ):
            add(widget.text())
        elif isinstance(widget, QGroupBox) and widget.isCheckable():
            add(widget.title())
        elif isinstance(widget, QTabBar):
            for index in range(widget.count()):
                add(widget.tabText(index))
    menu_bar = getattr(window, "menuBar", None)
    if callable(menu_bar):
        for act in menu_bar().actions():
            add(act.text())
    return found


def clashes(window: QWidget) -> list[str]:
    return sorted(f"Alt+{k.upper()} x{n}" for k, n in mnemonics(window).items() if n > 1)


async def demo_window(window: MainWindow) -> MainWindow:
    await window.start(demo=True)
    await until(lambda: window.form.target_ready, what="the demo ready")
    return window


@pytest.mark.asyncio
async def test_main_window_controls_all_have_names(window: MainWindow, qtbot: QtBot) -> None:
    await demo_window(window)
    assert unnamed_controls(window) == []
    window.entry_tabs.setCurrentWidget(window.grid)
    assert unnamed_controls(window) == []


@pytest.mark.asyncio
async def test_main_window_has_no_clashing_mnemonics(window: MainWindow, qtbot: QtBot) -> None:
    await demo_window(window)
    assert clashes(window) == []
    window.entry_tabs.setCurrentWidget(window.grid)
    assert clashes(window) == []


@pytest.mark.asyncio
async def test_connect_dialog_controls_have_names_and_distinct_mnemonics(
    window: MainWindow, qtbot: QtBot
) -> None:
    dialog = ConnectDialog(window.desk, window.tasks, None, window)
    dialog.show()
    try:
        assert unnamed_controls(dialog) == []
        assert clashes(dialog) == []
    finally:
        dialog.close()


def test_layout_dialog_controls_have_names_and_distinct_mnemonics(qtbot: QtBot) -> None:
    dialog = LayoutDialog(default_layout(), "Home Loans")
    qtbot.addWidget(dialog)
    dialog.show()
    assert unnamed_controls(dialog) == []
    assert clashes(dialog) == []


def test_the_walk_finds_an_unnamed_control_and_a_clash(qtbot: QtBot) -> None:
    """The checks above can fail: a bare line edit and two &Save buttons are found."""
    from PySide6.QtWidgets import QLineEdit, QPushButton, QVBoxLayout

    probe = QWidget()
    qtbot.addWidget(probe)
    layout = QVBoxLayout(probe)
    bare = QLineEdit()
    bare.setObjectName("bare")
    layout.addWidget(bare)
    layout.addWidget(QPushButton("&Save"))
    layout.addWidget(QPushButton("&Send"))
    probe.show()
    assert any("bare" in line for line in unnamed_controls(probe))
    assert clashes(probe) == ["Alt+S x2"]


def test_status_bar_states_have_an_icon_and_words_not_only_a_colour(qtbot: QtBot) -> None:
    bar = StatusBar(lambda: "Demo PBX")
    qtbot.addWidget(bar)
    bar.show()
    ok = QueueFigures(
        in_flight=0, limit=4, rate_per_s=0.0, queued=0, next_retry_at=None, paused_reason=None,
        server_state="ok", counts={},
    )  # fmt: skip
    cases = {
        "attention": replace(ok, needs_attention=True, paused_reason="The key was refused."),
        "paused": replace(ok, paused_reason="Paused by you"),
        "offline": replace(ok, server_state="offline"),
        "ok": ok,
    }
    icons = {}
    for state, figures in cases.items():
        bar.show_figures(figures)
        assert bar.connection_state == state
        pixmap = bar.connection_icon.pixmap()
        assert pixmap is not None
        assert not pixmap.isNull(), f"{state}: no icon"
        icons[state] = pixmap.toImage()
        name = bar.connection.accessibleName()
        assert name
        assert any(w in name.lower() for w in (state, "needs", "connected")), name
    assert icons["attention"] != icons["ok"]
    assert icons["paused"] != icons["ok"]
    # No glyph that common fonts lack (the pause sign showed as a box).
    bar.show_figures(cases["paused"])
    assert "⏸" not in bar.connection_text


def test_banners_carry_an_icon_besides_their_colour(qtbot: QtBot) -> None:
    banner = Banner("probe")
    qtbot.addWidget(banner)
    banner.say(BannerReason.QUEUE_NEEDS_ATTENTION, "Sending is paused.")
    banner.show()
    pixmap = banner.icon.pixmap()
    assert pixmap is not None
    assert not pixmap.isNull()
    assert banner.accessibleName()


def _palette(window: str, text: str) -> QPalette:
    from PySide6.QtGui import QColor

    palette = QPalette()
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        palette.setColor(group, QPalette.ColorRole.Window, QColor(window))
        palette.setColor(group, QPalette.ColorRole.WindowText, QColor(text))
        palette.setColor(group, QPalette.ColorRole.Base, QColor(window))
        palette.setColor(group, QPalette.ColorRole.Text, QColor(text))
    return palette


def test_theme_follows_dark_and_high_contrast_palettes(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before = app.palette()
    try:
        app.setPalette(_palette("#efefef", "#000000"))
        assert not theme.is_dark()
        assert not theme.is_high_contrast()
        light = theme.banner_colours("error")
        app.setPalette(_palette("#2b2b2b", "#e6e6e6"))
        assert theme.is_dark()
        assert not theme.is_high_contrast()
        dark = theme.banner_colours("error")
        assert dark != light
        assert theme.lightness(dark[0]) < 128 < theme.lightness(dark[1])
        app.setPalette(_palette("#000000", "#ffffff"))
        assert theme.is_high_contrast()
        back, fore = theme.banner_colours("error")
        assert (back, fore) == ("#000000", "#ffffff")  # the system's own colours, untinted
        assert theme.tone("error") in ("#ffffff", "#ffff00", theme.tone("error"))
    finally:
        app.setPalette(before)


def test_a_high_contrast_palette_gets_frames_in_its_text_colour(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before, sheet = app.palette(), app.styleSheet()
    try:
        app.setPalette(_palette("#000000", "#ffffff"))
        theme.follow_system(app)
        assert "border: 1px solid #ffffff" in app.styleSheet()
        app.setPalette(_palette("#efefef", "#000000"))
        theme.follow_system(app)
        assert app.styleSheet() == ""
    finally:
        app.setPalette(before)
        app.setStyleSheet(sheet)
        app.setProperty("noojeeHighContrast", None)
