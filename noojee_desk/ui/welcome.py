"""The first-run page: connect to a PBX, or try the demo."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class WelcomePage(QWidget):
    connect_requested = Signal()
    demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        title = QLabel("Welcome to Noojee Desk")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        blurb = QLabel(
            "Put leads into your Noojee dialler campaigns: key one in, or paste hundreds from a "
            "spreadsheet. Every lead is queued on this computer and delivered, even through busy "
            "periods and PBX maintenance."
        )
        blurb.setWordWrap(True)
        blurb.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.connect_button = QPushButton("Connect to your PBX…")
        self.connect_button.setObjectName("welcomeConnect")
        self.connect_button.setDefault(True)
        self.connect_button.setMinimumHeight(44)
        self.connect_button.setToolTip("Server address and API key from your Noojee administrator")
        self.demo_button = QPushButton("Try the demo")
        self.demo_button.setObjectName("welcomeDemo")
        self.demo_button.setMinimumHeight(44)
        self.demo_button.setToolTip("A built-in practice PBX: nothing leaves this computer")
        self.connect_button.clicked.connect(self.connect_requested)
        self.demo_button.clicked.connect(self.demo_requested)

        self.hint = hint = QLabel(
            "You need the server address and an API key. The key is kept in this computer's "
            "password store, never in a file."
        )
        hint.setWordWrap(True)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setEnabled(False)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.connect_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.demo_button)
        buttons.addStretch(1)
        card = QWidget()
        card.setMaximumWidth(620)
        column = QVBoxLayout(card)
        column.addWidget(title)
        column.addSpacing(8)
        column.addWidget(blurb)
        column.addSpacing(24)
        column.addLayout(buttons)
        column.addSpacing(12)
        column.addWidget(hint)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 3)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addLayout(row)
        layout.addStretch(3)

    def set_demo_allowed(self, allowed: bool) -> None:
        """An administrator may turn the demo off: then it is not offered."""
        self.demo_button.setVisible(allowed)
