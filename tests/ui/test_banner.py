"""Banners: a reason, a text, any number of buttons; taken down only for their own reason."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton, QWidget
from pytestqt.qtbot import QtBot

from noojee_desk.ui.banner import Banner, BannerReason
from noojee_desk.ui.theme import banner_colours


def shown(qtbot: QtBot) -> tuple[QWidget, Banner]:
    parent = QWidget()
    qtbot.addWidget(parent)
    banner = Banner("testBanner", parent)
    parent.show()
    return parent, banner


def test_a_banner_says_its_reason_text_and_colours(qtbot: QtBot) -> None:
    _parent, banner = shown(qtbot)
    assert not banner.isVisible()
    assert banner.reason is None
    banner.say(BannerReason.SETTINGS_DAMAGED, "The settings file was damaged.")
    assert banner.isVisible()
    assert banner.reason is BannerReason.SETTINGS_DAMAGED
    assert banner.text == "The settings file was damaged."
    assert banner.accessibleDescription() == banner.text
    assert banner.buttons == []
    back, fore = banner_colours("error")
    assert back in banner.styleSheet()
    assert fore in banner.styleSheet()
    banner.say(BannerReason.DEMO_MODE, "DEMO MODE")
    assert banner_colours("demo")[0] in banner.styleSheet()
    banner.say(BannerReason.FIELDS_NOTE, "The PBX could not be asked for the fields.")
    assert banner_colours("info")[0] in banner.styleSheet()
    banner.say(BannerReason.FIELDS_NEED_LOOK, "Check the phone fields before sending.")
    assert banner_colours("warning")[0] in banner.styleSheet()
    banner.say(BannerReason.SETUP_STOPPED, "The PBX refused the first 5 leads.")
    assert banner_colours("error")[0] in banner.styleSheet()


def test_every_reason_has_a_colour() -> None:
    for reason in BannerReason:
        assert banner_colours(reason.kind)


def test_two_buttons_each_run_their_own_action(qtbot: QtBot) -> None:
    _parent, banner = shown(qtbot)
    clicked: list[str] = []
    banner.say(
        BannerReason.QUEUE_NEEDS_ATTENTION,
        "Two fields are missing.",
        [
            ("Fix fields…", lambda: clicked.append("fix")),
            ("Send anyway", lambda: clicked.append("send")),
        ],
    )
    assert [b.text() for b in banner.buttons] == ["Fix fields…", "Send anyway"]
    assert all(b.isVisible() for b in banner.buttons)
    assert banner.findChildren(QPushButton) == banner.buttons
    qtbot.mouseClick(banner.buttons[1], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(banner.buttons[0], Qt.MouseButton.LeftButton)
    assert clicked == ["send", "fix"]


def test_said_again_keeps_its_buttons_and_runs_the_newest_actions(qtbot: QtBot) -> None:
    _parent, banner = shown(qtbot)
    clicked: list[int] = []
    banner.say(
        BannerReason.QUEUE_NEEDS_ATTENTION, "Paused", [("Settings…", lambda: clicked.append(1))]
    )
    button = banner.buttons[0]
    banner.say(
        BannerReason.QUEUE_NEEDS_ATTENTION, "Paused", [("Settings…", lambda: clicked.append(2))]
    )
    assert banner.buttons == [button]  # the same button: a person's focus on it stays
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert clicked == [2]
    banner.say(BannerReason.TASK_FAILED, "Something failed.")  # no buttons now
    assert banner.buttons == []
    qtbot.waitUntil(lambda: not banner.findChildren(QPushButton))


def test_clear_takes_down_only_the_reasons_named(qtbot: QtBot) -> None:
    _parent, banner = shown(qtbot)
    banner.say(BannerReason.CONNECTION_BLOCKED, "The PBX refused the list of templates.")
    banner.clear(BannerReason.QUEUE_NEEDS_ATTENTION)
    assert banner.isVisible()
    assert banner.reason is BannerReason.CONNECTION_BLOCKED
    banner.clear(BannerReason.QUEUE_NEEDS_ATTENTION, BannerReason.CONNECTION_BLOCKED)
    assert not banner.isVisible()
    assert banner.reason is None
    banner.say(BannerReason.TASK_FAILED, "x")
    banner.clear()  # no reason named: whatever it shows
    assert not banner.isVisible()
