"""The window's status bar: passing messages on the left; the connection's state and the queue's
counts on the right, always shown."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from PySide6.QtWidgets import QFrame, QLabel, QStatusBar, QWidget

from noojee_desk.core.delivery.dispatcher import QueueFigures
from noojee_desk.ui.queue.model import clock_text
from noojee_desk.ui.theme import state_icon, style

#: The counts shown, in this order: state -> label (states with no leads are left out).
COUNTS = (
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("delivered", "Delivered"),
    ("rejected", "Rejected"),
    ("duplicate", "Duplicate, maybe delivered"),
    ("failed", "Failed"),
    ("held", "On hold"),
)


def connection_state(figures: QueueFigures) -> str:
    """attention, other (another process sends), paused, offline, busy or ok."""
    if figures.needs_attention:
        return "attention"
    if figures.busy_with:
        return "other"
    if figures.paused_reason:
        return "paused"
    if figures.server_state in ("offline", "busy"):
        return figures.server_state
    return "ok"


#: Each state's icon: (tone, mark). The words say the state too: never the colour alone.
_ICONS = {
    "attention": ("error", "bang"),
    "other": ("info", "i"),
    "paused": ("muted", "bars"),
    "offline": ("warning", "cross"),
    "busy": ("warning", "dots"),
    "ok": ("ok", "check"),
    "none": ("muted", "cross"),
}


def connection_text(figures: QueueFigures, server: str) -> str:
    """The connection's state in a sales person's words, from the dispatcher's figures."""
    state = connection_state(figures)
    if state == "attention":
        return f"Needs attention: {figures.paused_reason}"
    if state == "other":
        return f"Sent by {figures.busy_with} — this window takes over when it ends"
    if state == "paused":
        return f"Paused — {server}"
    if state == "offline":
        when = clock_text(figures.next_retry_at) or "soon"
        return f"Offline — {server} cannot be reached, retrying at {when}"
    if state == "busy":
        return f"Server busy — {server} is queueing requests; sending slower"
    return f"Connected — {server}"


def counts_text(counts: Mapping[str, int]) -> str:
    parts = [f"{label} {counts.get(key, 0):,}" for key, label in COUNTS if counts.get(key)]
    return " · ".join(parts) or "Queue empty"


class StatusBar(QStatusBar):
    """Renders its part of the dispatcher's ``QueueFigures``; messages come and go as usual."""

    def __init__(self, server: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self._server = server  # the server's name in the texts ("Demo PBX (built in)", a profile)
        self.connection_icon = QLabel()
        self.connection_icon.setObjectName("connectionIcon")
        self.connection = QLabel()
        self.connection.setObjectName("connectionStatus")
        self.connection_state = "none"
        self.counts = QLabel()
        self.counts.setObjectName("queueCounts")
        # Both are permanent: a passing message ("Queued 2 leads.") shows on the left and never
        # hides whether the PBX can be reached (an outage, the moment it is back).
        self.addPermanentWidget(self.connection_icon)
        self.addPermanentWidget(self.connection)
        between = QFrame()
        between.setFrameShape(QFrame.Shape.VLine)
        between.setFrameShadow(QFrame.Shadow.Sunken)
        self.addPermanentWidget(between)
        self.addPermanentWidget(self.counts)

    @property
    def connection_text(self) -> str:
        return self.connection.text()

    @property
    def counts_text(self) -> str:
        return self.counts.text()

    def set_connection(self, text: str, state: str | None = None) -> None:
        """Say how the connection stands before the dispatcher does (not connected, …)."""
        if state is None:
            state = "none" if text.startswith("Not connected") else "ok"
        self._show_state(state, text)

    def show_figures(self, figures: QueueFigures) -> None:
        self._show_state(connection_state(figures), connection_text(figures, self._server()))
        self.show_counts(figures.counts)

    def _show_state(self, state: str, text: str) -> None:
        if state != self.connection_state or self.connection_icon.pixmap().isNull():
            kind, mark = _ICONS[state]
            self.connection_icon.setPixmap(state_icon(kind, mark, 14))
            self.connection.setStyleSheet(
                style(kind) if state in ("attention", "offline", "busy") else ""
            )
        self.connection_state = state
        self.connection.setText(text)
        self.connection.setAccessibleName(text)

    def show_counts(self, counts: Mapping[str, int]) -> None:
        self.counts.setText(counts_text(counts))
