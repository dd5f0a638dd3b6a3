"""What the grid reads from Qt's clipboard and drags: text flavours, exact values, lead files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData

from noojee_desk.core.leads.paste import EXACT_MARKS, html_later, is_lead_file


def clipboard_formats(mime: QMimeData | None) -> dict[str, str | bytes]:
    """The text flavours of a clipboard payload (never an image)."""
    formats: dict[str, str | bytes] = {}
    if mime is None:
        return formats
    # Raw bytes (decoded in the worker thread): turning 30 MB into a str here would stall.
    if mime.hasHtml():
        formats["text/html"] = bytes(mime.data("text/html").data())
    if mime.hasText():
        formats["text/plain"] = bytes(mime.data("text/plain").data())
    return formats


def exact_values_html(markup: QByteArray) -> bytes | None:
    """The clipboard's HTML if it holds the exact values of numbers; worker thread.

    Searched where it lies: bringing 30 MB over to Python would cost the window a frame, and
    without the exact values the text is all there is.
    """
    return bytes(markup.data()) if any(markup.contains(mark) for mark in EXACT_MARKS) else None


def files_in(mime: QMimeData) -> list[Path]:
    """Local lead files in a drag: CSV, TSV, TXT or XLSX."""
    if not mime.hasUrls():
        return []
    return [
        Path(url.toLocalFile())
        for url in mime.urls()
        if url.isLocalFile() and is_lead_file(url.toLocalFile())
    ]


def paste_formats(mime: QMimeData | None) -> tuple[dict[str, str | bytes], bool]:
    """The flavours a paste reads first, and whether the HTML is to be fetched only if needed
    (a big paste: see ``paste.html_later``)."""
    if mime is not None and mime.hasText() and mime.hasHtml():
        text = bytes(mime.data("text/plain").data())
        if html_later(len(text)):
            return {"text/plain": text}, True
    return clipboard_formats(mime), False
