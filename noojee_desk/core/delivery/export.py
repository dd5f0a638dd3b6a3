"""Results export: one row per lead, straight from the outbox's per-lead state (CSV or XLSX)."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import Lead, LeadQuery
from noojee_desk.core.files import atomic_write
from noojee_desk.core.pbx import EXTERNAL_ID_FIELD
from noojee_desk.core.redact import redact_text

#: The result columns, after the lead's own fields.
RESULT_COLUMNS = (
    EXTERNAL_ID_FIELD,
    "Status",
    "Code",
    "Server message",
    "Reason",
    "Fix",
    "Attempts",
    "First attempt",
    "Last attempt",
    "Row",
    "Batch",
)
_FORMULA_START = ("=", "@", "\t", "\r")
_NUMBER_LIKE = re.compile(r"^[+-][\d\s().]*$")
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _when(timestamp: float | None) -> str:
    """Local time in a form spreadsheets read as a date ("2026-03-31 14:30:05")."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


#: Told (rows written, rows in all) every ``PROGRESS_EVERY`` rows; returning False cancels.
Progress = Callable[[int, int], bool]
PROGRESS_EVERY = 2000


class ExportCancelled(Exception):
    """The person cancelled the export; nothing was written (the old file, if any, stays)."""


def columns(outbox: Outbox, query: LeadQuery) -> list[str]:
    """The lead fields (in order of first appearance), then the result columns.

    The names come from SQLite (``Outbox.field_names``): the leads are decoded once, for
    their rows, not a second time for the header."""
    fields = [n for n in outbox.field_names(query) if n != EXTERNAL_ID_FIELD]
    taken = set(fields)
    result = [f"{c} (result)" if c in taken else c for c in RESULT_COLUMNS]
    return fields + result


def _row(lead: Lead, fields: list[str]) -> list[str]:
    return [
        *(lead.fields.get(name, "") for name in fields),
        lead.external_id,
        lead.state.value,
        "" if lead.last_code is None else str(lead.last_code),
        redact_text(lead.last_message),
        redact_text(lead.sentence),
        redact_text(lead.fix),
        str(lead.attempts),
        _when(lead.first_attempt_at),
        _when(lead.last_attempt_at),
        "" if lead.row is None else str(lead.row),
        str(lead.batch_id),
    ]


def rows(outbox: Outbox, query: LeadQuery | None = None) -> tuple[list[str], Iterator[list[str]]]:
    """The header and the rows of a results table for the leads ``query`` selects (all)."""
    query = query or LeadQuery()
    header = columns(outbox, query)
    fields = header[: len(header) - len(RESULT_COLUMNS)]
    return header, (_row(lead, fields) for lead in outbox.iter_leads(query))


def _safe_for_spreadsheet(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula; phone numbers stay as they are."""
    if value.startswith(_FORMULA_START) or (
        value.startswith(("+", "-")) and not _NUMBER_LIKE.match(value)
    ):
        return "'" + value
    return value


def _counted(
    outbox: Outbox, query: LeadQuery | None, progress: Progress | None
) -> Iterator[list[str]]:
    """The rows, telling ``progress`` as they go (and stopping when it says so)."""
    header, body = rows(outbox, query)
    yield header
    if progress is None:
        yield from body
        return
    total = outbox.count(query or LeadQuery())
    if not progress(0, total):
        raise ExportCancelled
    for done, row in enumerate(body, start=1):
        yield row
        if done % PROGRESS_EVERY == 0 and not progress(done, total):
            raise ExportCancelled
    progress(total, total)


def write_csv(
    outbox: Outbox,
    destination: str | os.PathLike[str] | IO[str],
    query: LeadQuery | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the results as CSV (UTF-8 with a byte-order mark, for Excel); returns the rows.

    One pass, page by page (memory stays flat): for big queues call it from an executor
    thread with an ``Outbox`` opened in that thread. ``progress`` hears how far it is and may
    cancel (``ExportCancelled``; a file path is then left as it was).
    """
    stream_of_rows = _counted(outbox, query, progress)
    header = next(stream_of_rows)
    body = stream_of_rows

    def write(stream: IO[str]) -> int:
        writer = csv.writer(stream)
        writer.writerow([_safe_for_spreadsheet(name) for name in header])  # names come from files
        count = 0
        for row in body:
            writer.writerow([_safe_for_spreadsheet(v) for v in row])
            count += 1
        return count

    if isinstance(destination, str | os.PathLike):
        with atomic_write(Path(destination), "w", encoding="utf-8-sig", newline="") as stream:
            return write(stream)
    return write(destination)


def write_xlsx(
    outbox: Outbox,
    destination: str | os.PathLike[str],
    query: LeadQuery | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the results as an XLSX workbook (every cell text, streamed: openpyxl's
    write-only mode); returns the rows written. ``progress`` as for ``write_csv``."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    stream_of_rows = _counted(outbox, query, progress)
    header = next(stream_of_rows)
    body = stream_of_rows
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Results")
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cell(value: str, *, font: Font | None = None) -> WriteOnlyCell:
        item = WriteOnlyCell(sheet, value=_XLSX_ILLEGAL.sub("", value))
        item.data_type = "s"  # text, even when it starts with "=": never a formula
        if font is not None:
            item.font = font
        return item

    sheet.append([cell(name, font=bold) for name in header])
    count = 0
    try:
        for row in body:
            sheet.append([cell(value) for value in row])
            count += 1
    except BaseException:
        with contextlib.suppress(Exception):
            sheet.close()  # its spool file, which it would otherwise finish while collected
        raise
    with atomic_write(Path(destination), "wb") as stream:
        # Saving packs the spooled sheet into the zip, which takes a while for a big history:
        # Cancel is still heard then (told "all rows done" as it goes).
        book.save(_Heeding(stream, lambda: progress is None or progress(count, count)))
    return count


class _Heeding(io.RawIOBase):
    """A binary stream that passes writes on and asks ``go_on`` every megabyte written.

    Once it has said stop it takes everything and keeps nothing: the zip writer, collected
    later, still finishes its file on it (the real one is gone by then).
    """

    EVERY = 1 << 20

    def __init__(self, stream: IO[bytes], go_on: Callable[[], bool]) -> None:
        super().__init__()
        self._stream: IO[bytes] | None = stream
        self._go_on = go_on
        self._since = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._stream is None or self._stream.seekable()

    def write(self, data: Any) -> int:
        if self._stream is None:
            return len(data)
        self._since += len(data)
        if self._since >= self.EVERY:
            self._since = 0
            if not self._go_on():
                self._stream = None
                raise ExportCancelled
        return self._stream.write(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return 0 if self._stream is None else self._stream.seek(offset, whence)

    def tell(self) -> int:
        return 0 if self._stream is None else self._stream.tell()

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()
