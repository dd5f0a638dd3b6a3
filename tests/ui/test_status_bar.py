"""The status bar's part of the queue figures: the connection's state and the counts."""

from __future__ import annotations

import dataclasses
import time

from PySide6.QtWidgets import QLabel, QMainWindow
from pytestqt.qtbot import QtBot

from noojee_desk.core.delivery.dispatcher import QueueFigures
from noojee_desk.ui.status_bar import StatusBar, connection_text, counts_text

FIGURES = QueueFigures(
    in_flight=2, limit=8, rate_per_s=3.5, queued=10, next_retry_at=None, paused_reason=None,
    server_state="ok", counts={"queued": 10, "sending": 2, "delivered": 1234},
)  # fmt: skip


def test_connection_text_for_each_state() -> None:
    f = FIGURES
    assert connection_text(f, "Office") == "Connected — Office"
    busy = dataclasses.replace(f, server_state="busy")
    assert connection_text(busy, "Office").startswith("Server busy — Office")
    offline = dataclasses.replace(f, server_state="offline")
    assert connection_text(offline, "Office").endswith("retrying at soon")
    at = time.mktime((*time.localtime()[:3], 10, 42, 0, 0, 0, -1))
    later = dataclasses.replace(offline, next_retry_at=at)
    assert connection_text(later, "Office").endswith("retrying at 10:42")
    paused = dataclasses.replace(f, paused_reason="Paused by you")
    assert connection_text(paused, "Office") == "Paused — Office"
    attention = dataclasses.replace(
        f, paused_reason="The PBX rejected the API key.", needs_attention=True
    )
    assert connection_text(attention, "Office") == (
        "Needs attention: The PBX rejected the API key."
    )


def test_connection_text_says_who_sends_the_queue_instead() -> None:
    other = dataclasses.replace(FIGURES, busy_with="'noojee-desk send' (pid 42, since 10:02:00)")
    assert connection_text(other, "Office") == (
        "Sent by 'noojee-desk send' (pid 42, since 10:02:00) — this window takes over when it ends"
    )


def test_counts_text_leaves_out_empty_states() -> None:
    assert counts_text({}) == "Queue empty"
    assert counts_text({"queued": 0, "delivered": 0}) == "Queue empty"
    assert counts_text({"held": 3, "delivered": 1234, "rejected": 0}) == (
        "Delivered 1,234 · On hold 3"
    )


def test_the_status_bar_renders_figures_and_keeps_messages(qtbot: QtBot) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    server = ["Office"]
    bar = StatusBar(lambda: server[0])
    window.setStatusBar(bar)
    window.show()
    bar.set_connection("Connected to Office")
    assert window.findChild(QLabel, "connectionStatus").text() == "Connected to Office"
    bar.show_figures(FIGURES)
    assert bar.connection_text == "Connected — Office"
    assert bar.counts_text == "Queued 10 · Sending 2 · Delivered 1,234"
    assert window.findChild(QLabel, "queueCounts").text() == bar.counts_text
    server[0] = "Demo PBX (built in)"  # the name is asked each time
    bar.show_figures(FIGURES)
    assert bar.connection_text == "Connected — Demo PBX (built in)"
    bar.showMessage("Queued 3 leads.", 4000)
    assert bar.currentMessage() == "Queued 3 leads."
    # A passing message never hides the connection's state (the PBX going down, coming back).
    bar.show_figures(dataclasses.replace(FIGURES, server_state="offline"))
    assert bar.connection.isVisible()
    assert bar.counts.isVisible()
    assert bar.currentMessage() == "Queued 3 leads."
