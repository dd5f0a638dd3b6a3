"""Rows from the clipboard's flavours: an HTML table when there is one, else tab-separated text."""

from __future__ import annotations

from collections.abc import Mapping

from noojee_desk.core.bulk import paused_gc
from noojee_desk.core.leads.html_tables import _TABLE_START, parse_html
from noojee_desk.core.leads.table import ParseProblem, Table
from noojee_desk.core.leads.text_tables import _as_text, parse_delimited


@paused_gc()
def parse_clipboard(formats: Mapping[str, str | bytes]) -> Table:
    """Rows from clipboard flavours keyed by MIME type: an HTML table when there is one, else
    tab-separated text. Other flavours (images and the rest) are never read. Blank rows are
    dropped. Never raises."""
    try:
        by_type: dict[str, str | bytes] = {}
        for mime, payload in formats.items():
            key = str(mime).split(";", 1)[0].strip().lower()
            if key in ("text/html", "text/plain", "text/tab-separated-values", "text/csv"):
                by_type.setdefault(key, payload)
        if "text/html" in by_type:
            markup = _as_text(by_type["text/html"])
            if _TABLE_START.search(markup):
                table = parse_html(markup).without_blank_rows()
                if table.rows:
                    return table
        for key, delimiter in (
            ("text/tab-separated-values", "\t"),
            ("text/plain", "\t"),
            ("text/csv", ","),
        ):
            if key in by_type:
                table = parse_delimited(_as_text(by_type[key]), delimiter).without_blank_rows()
                if table.rows or key == "text/plain":
                    return table
        return Table([], [ParseProblem(0, None, "The clipboard holds no text or table.")])
    except Exception as exc:  # the last line of defence: a message, not a crash
        return Table([], [ParseProblem(0, None, f"The clipboard could not be read: {exc}")])
