"""Banners: coloured strips across the window for things a person must see.

Each banner says why it is shown (a ``BannerReason``), so whoever put it up can take it down
again without guessing from its text or its buttons, and carries any number of buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from noojee_desk.ui.theme import banner_colours, state_icon

#: Each kind's icon (tone, mark): the kind is never told by the strip's colour alone.
_ICONS = {"demo": ("info", "i"), "info": ("info", "i"), "warning": ("warning", "bang"),
          "error": ("error", "bang")}  # fmt: skip
_KIND_WORDS = {"demo": "Note", "info": "Note", "warning": "Warning", "error": "Problem"}


class BannerReason(Enum):
    """Why a banner is shown."""

    DEMO_MODE = "demo mode"  # leads go to the built-in practice PBX
    SETTINGS_DAMAGED = "settings damaged"  # the settings file was unreadable: defaults in use
    SETTINGS_NOT_SAVED = "settings not saved"  # settings, a layout or a mapping not written
    CONNECTION_NOT_SAVED = "connection not saved"  # its key or settings could not be stored
    NOT_CONNECTED = "not connected"  # the profile has no client (no key, or it cannot be read)
    CONNECTION_BLOCKED = "connection blocked"  # the server refused to list templates, …
    QUEUE_NEEDS_ATTENTION = "queue needs attention"  # the whole queue paused (key, address, TLS)
    SENDING_STOPPED = "sending stopped"  # an unexpected error; it starts again by itself
    EXPORT_FAILED = "export failed"  # the results could not be written
    TASK_FAILED = "task failed"  # something the window started failed unexpectedly
    FIELDS_NOTE = "fields note"  # what a person should know about the template's fields
    FIELDS_NEED_LOOK = "fields need a look"  # phone fields guessed from names, not confirmed
    SETUP_STOPPED = "set-up stopped"  # a batch held: its first answers were one set-up mistake
    MANAGED_DAMAGED = "managed settings damaged"  # the administrator's file is ignored
    QUEUE_FILE = "queue file"  # the queue file cannot be read or written (disk, damage, lock)

    @property
    def kind(self) -> str:
        """The banner's colours: demo, info, warning or error."""
        if self is BannerReason.DEMO_MODE:
            return "demo"
        if self is BannerReason.FIELDS_NOTE:
            return "info"
        return "warning" if self is BannerReason.FIELDS_NEED_LOOK else "error"


#: A button on a banner: its caption and what it does.
BannerAction = tuple[str, Callable[[], object]]


class Banner(QFrame):
    """One strip; ``say`` shows a reason's text and buttons, ``clear`` takes them down."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 10, 6)
        self.icon = QLabel()
        self.icon.setObjectName(f"{name}Icon")
        self._layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self._layout.addWidget(self.label, 1)
        self._reason: BannerReason | None = None
        self._actions: list[BannerAction] = []
        self.buttons: list[QPushButton] = []
        self.hide()

    @property
    def reason(self) -> BannerReason | None:
        """Why the banner is shown (None: it is not)."""
        return self._reason

    @property
    def text(self) -> str:
        return self.label.text()

    def say(self, reason: BannerReason, text: str, actions: Sequence[BannerAction] = ()) -> None:
        """Show ``text`` for ``reason`` with a button per action (replacing what was shown)."""
        if reason is not self._reason or self.text != text:
            back, fore = banner_colours(reason.kind)
            self.setStyleSheet(
                f"#{self.objectName()} {{ background: {back}; }} QLabel {{ color: {fore}; }}"
            )
            self.label.setText(text)
            self.icon.setPixmap(state_icon(*_ICONS[reason.kind]))
            self.setAccessibleName(_KIND_WORDS[reason.kind])
            self.setAccessibleDescription(text)
        self._reason = reason
        captions = [caption for caption, _ in actions]
        if captions != [button.text() for button in self.buttons]:
            # Only when the captions change: a banner said again and again (the queue's figures
            # come four times a second) keeps its buttons, and the focus on them.
            for button in self.buttons:
                button.deleteLater()
            self.buttons = []
            for index, caption in enumerate(captions):
                button = QPushButton(caption)
                button.setObjectName(f"{self.objectName()}Action{index}")
                button.clicked.connect(lambda _=False, i=index: self._actions[i][1]())
                self._layout.addWidget(button)
                self.buttons.append(button)
        self._actions = list(actions)
        self.show()

    def clear(self, *reasons: BannerReason) -> None:
        """Hide the banner if it shows one of ``reasons`` (any reason when none is given)."""
        if self._reason is None or (reasons and self._reason not in reasons):
            return
        self._reason = None
        self.hide()
