"""Many pasted or opened leads before they are queued: rows, their checks, and the rules of pasting.

No Qt here: the batch grid (``ui.grid``) shows and edits these rows; what runs in a worker
thread (reading a clipboard, preparing a table, checking rows) is plain Python on plain data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import PurePath
from typing import Any

from noojee_desk.core.bulk import release
from noojee_desk.core.leads.clipboard import parse_clipboard
from noojee_desk.core.leads.layouts import SYSTEM_FIELDS, FieldLayout
from noojee_desk.core.leads.mapping import ColumnMapping, apply_mapping, detect_mapping
from noojee_desk.core.leads.table import Table
from noojee_desk.core.leads.validate import ERROR, WARNING, LeadCheck, Problem, Validator

#: Files a person may open or drop as leads.
FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")


def is_lead_file(path: str | PurePath) -> bool:
    """Whether ``path`` names a CSV, TSV, TXT or XLSX file (by its suffix)."""
    return PurePath(path).suffix.lower() in FILE_SUFFIXES


# -- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GridLead:
    """A valid grid row ready to queue; reads like ``records.LeadInput`` plus the grid's row id."""

    row_id: int
    fields: dict[str, str]
    phones: frozenset[str] = frozenset()
    row: int | None = None


@dataclass(slots=True, eq=False)
class GridRow:
    """One pasted or imported row: its raw cells, where it came from, and its last check."""

    id: int
    cells: list[str]
    source_row: int  # its row number in the paste or file (a header row counts as row 1)
    source: str = ""
    check: LeadCheck | None = None
    version: int = 0  # bumped on every edit; a check of an older version is stale
    checked_version: int = -1  # the version ``check`` belongs to
    queueing: bool = False  # handed to the queue, waiting for the confirmation
    # Problems split by column for the current mapping (cached; ``marks_for`` the mapping id).
    cell_problems: dict[int, list[Problem]] = field(default_factory=dict)
    row_problems: list[Problem] = field(default_factory=list)
    marks_for: int = -1

    def cell(self, column: int) -> str:
        return self.cells[column] if column < len(self.cells) else ""

    @property
    def current(self) -> bool:
        """Whether ``check`` belongs to the cells as they are now."""
        return self.check is not None and self.checked_version == self.version

    @property
    def severity(self) -> str | None:
        """The worst problem of the row, or None (also None when not checked yet)."""
        if self.check is None:
            return None
        worst = None
        for problem in self.check.problems:
            if problem.severity == ERROR:
                return ERROR
            worst = WARNING
        return worst


class RowKind(IntEnum):
    """What a row counts as in the grid's summary (a list indexed by kind keeps the counts)."""

    QUEUEING = 0
    UNCHECKED = 1
    CLEAN = 2
    WARNED = 3
    BLOCKED = 4


def row_kind(row: GridRow) -> RowKind:
    if row.queueing:
        return RowKind.QUEUEING
    check = row.check
    if check is None:
        return RowKind.UNCHECKED
    if not check.problems:
        return RowKind.CLEAN
    return RowKind.WARNED if check.ok else RowKind.BLOCKED


@dataclass(slots=True)
class GridState:
    """Everything the grid shows, for resets and for undoing them."""

    titles: list[str] = field(default_factory=list)
    header: list[str] | None = None  # the source's header row, when it had one
    mapping: list[str | None] = field(default_factory=list)
    rows: list[GridRow] = field(default_factory=list)


def row_label(row: GridRow) -> str:
    """Where a row came from, for its tooltip: "Pasted row 12" or "Row 12 of leads.csv"."""
    source = row.source
    if not source or source.startswith("Pasted"):
        return f"Pasted row {row.source_row}"
    if source.startswith("Taken back"):
        return f"Row {row.source_row}, {source[0].lower()}{source[1:]}"
    return f"Row {row.source_row} of {source}"


def next_source_row(rows: Iterable[GridRow]) -> int:
    """The number a row added after ``rows`` gets (one past the highest)."""
    return max((r.source_row for r in rows), default=0) + 1


def column_title(column: int) -> str:
    return f"Column {column + 1}"


def build_rows(
    tables: Iterable[Sequence[str]], first_id: int, source: str, first_number: int = 1
) -> list[GridRow]:
    """Grid rows for cell lists, with ids from ``first_id`` on (safe in a worker thread)."""
    return [
        GridRow(first_id + i, list(cells), first_number + i, source)
        for i, cells in enumerate(tables)
    ]


def grid_leads(rows: Iterable[GridRow]) -> list[GridLead]:
    """The checked fields of rows, ready to queue (every row must have a check)."""
    leads = []
    for row in rows:
        check = row.check
        assert check is not None
        leads.append(GridLead(row.id, dict(check.fields), frozenset(check.phones), row.source_row))
    return leads


# -- problems ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProblemEntry:
    row_id: int
    problem: Problem


def problem_text(problem: Problem) -> str:
    """The message and, when there is one, the suggested fix."""
    if problem.fix is None:
        return problem.message
    return f"{problem.message}\nSuggested fix: {problem.fix.label} → “{problem.fix.value}”"


def problem_message(problem: Any) -> str:
    """A reading problem's message (or the problem as text)."""
    message = getattr(problem, "message", None)
    return str(message if message is not None else problem)


@dataclass(slots=True)
class CheckResult:
    checks: list[tuple[int, int, LeadCheck]]  # (row id, version checked, check)
    entries: list[ProblemEntry]


def check_rows(
    validator: Validator, mapping: Sequence[str | None], rows: Sequence[GridRow]
) -> CheckResult:
    """Map and validate rows; runs in a worker thread while the UI thread may edit them.

    Each row's version is read before its cells (see ``BatchModel.set_cells``).
    """
    snapshot = [(r.id, r.version, r.cells) for r in rows]
    if not snapshot:
        return CheckResult([], [])
    leads = apply_mapping([cells for _, _, cells in snapshot], ColumnMapping(tuple(mapping)))
    checks = validator.validate_rows(leads, first_row=1)
    _source_numbers(checks, [r.source_row for r in rows])
    out = [(rid, version, check) for (rid, version, _), check in zip(snapshot, checks, strict=True)]
    entries = [
        ProblemEntry(rid, problem)
        for (rid, _, _), check in zip(snapshot, checks, strict=True)
        for problem in check.problems
    ]
    release(leads)
    release(snapshot)
    return CheckResult(out, entries)


_OTHER_ROW = re.compile(r"(also (?:used )?in row )(\d+)")


def _source_numbers(checks: Sequence[LeadCheck], numbers: Sequence[int]) -> None:
    """Messages that name another row ("also in row 3") name it by the row number the grid
    shows (its row in the paste or file), not by its place in the list checked."""
    if all(n == i for i, n in enumerate(numbers, start=1)):
        return

    def shown(match: re.Match[str]) -> str:
        place = int(match.group(2))
        number = numbers[place - 1] if 0 < place <= len(numbers) else place
        return f"{match.group(1)}{number}"

    for check in checks:
        problems = check.problems
        for i, problem in enumerate(problems):
            if " row " in problem.message:
                message = _OTHER_ROW.sub(shown, problem.message)
                if message != problem.message:
                    problems[i] = replace(problem, message=message)


# -- a new table in the grid ---------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """A table turned into grid rows: titles, header, mapping, rows; what was dropped."""

    titles: list[str]
    header: list[str] | None
    mapping: list[str | None]
    rows: list[GridRow]
    blank: int = 0
    notes: list[str] = field(default_factory=list)


def prepare_table(
    table: Table,
    layout: FieldLayout,
    saved: dict[str, list[str | None]],
    first_id: int,
    source: str,
) -> Prepared:
    """Detect the header, choose the mapping, build rows (blank rows left out); worker thread."""
    rows = table.rows
    width = max((len(r) for r in rows), default=0)
    has_header, found = detect_mapping(list(rows[0]), layout, saved, rows[1:21])
    mapping = found.to_list()
    header = [str(c).strip() for c in rows[0]] if has_header else None
    data = rows[1:] if has_header else rows
    titles = [column_title(c) for c in range(width)]
    if header is not None:
        header += [""] * (width - len(header))
        titles = [h or column_title(c) for c, h in enumerate(header)]
    kept: list[list[str]] = []
    numbers: list[int] = []
    blank = 0
    # Each row keeps its row number in the source, the header row counted as a spreadsheet
    # counts it (the first row below a header is row 2), also below rows the reader left out.
    source_numbers = table.row_numbers()
    for number, cells in zip(
        source_numbers[1:] if has_header else source_numbers, data, strict=True
    ):
        if not any(c.strip() for c in cells):
            blank += 1
            continue
        kept.append(cells)
        numbers.append(number)
    grid_rows = build_rows(kept, first_id, source)
    for row, number in zip(grid_rows, numbers, strict=True):
        row.source_row = number
    mapping = mapping[:width] + [None] * (width - len(mapping))
    return Prepared(titles, header, mapping, grid_rows, blank)


def load_note(table: Table, prepared: Prepared, *, append: bool, replaced: int, source: str) -> str:
    """What a load did, for the status line: "Pasted 500 rows; first row read as the header"."""
    verb = "Added" if append else "Pasted" if source.startswith("Pasted") else "Opened"
    notes = [f"{verb} {len(prepared.rows):,} rows"]
    if prepared.header is not None:
        notes.append("first row read as the header")
    if prepared.blank:
        notes.append(f"{prepared.blank:,} empty rows left out")
    if table.problems:
        notes.append(
            f"{len(table.problems):,} reading problems "
            f"(first: {problem_message(table.problems[0])})"
        )
    if replaced and not append:
        notes.append(f"replaced the {replaced:,} rows that were here (Undo brings them back)")
    return "; ".join(notes)


def has_data(table: Table) -> bool:
    """Whether any cell of ``table`` holds more than white space."""
    return any(any(c.strip() for c in r) for r in table.rows)


def header_read(
    state: GridState, layout: FieldLayout, saved: dict[str, list[str | None]]
) -> GridState:
    """The grid with its first row read as the header (and the mapping found for it)."""
    first = state.rows[0]
    header = [c.strip() for c in first.cells] + [""] * (len(state.titles) - len(first.cells))
    sample = [r.cells for r in state.rows[1:21]]
    mapping = detect_mapping(header, layout, saved, sample)[1].to_list()
    titles = [h or column_title(c) for c, h in enumerate(header)]
    return GridState(titles, header, mapping, state.rows[1:])


def header_as_row(state: GridState, row: GridRow) -> GridState:
    """The grid with its header put back as the first row ``row`` (made of ``state.header``)."""
    titles = [column_title(c) for c in range(len(state.titles))]
    return GridState(titles, None, state.mapping, [row, *state.rows])


# -- mapping -------------------------------------------------------------------------------------


def exclusive(target: str, layout: FieldLayout) -> bool:
    """Phone and system fields take one column; text fields may join several (a space
    between), as "First name" + "Surname" into Name."""
    return target in layout.phone_fields or target in SYSTEM_FIELDS


def remap(
    mapping: Sequence[str | None], column: int, target: str | None, layout: FieldLayout
) -> list[str | None] | None:
    """The mapping with ``column`` sent as ``target``; None when nothing changes. A field that
    takes one column is taken off any other column that had it."""
    new = list(mapping)
    if column >= len(new) or new[column] == target:
        return None
    if target is not None and exclusive(target, layout):
        new = [None if m == target else m for m in new]
    new[column] = target
    return new


# -- big pastes ----------------------------------------------------------------------------------

#: Above this much HTML, the tab-separated flavour is read first (see ``read_clipboard``).
BIG_HTML = 2_000_000
#: Above this much tab-separated text, the HTML flavour is fetched only if it is needed.
BIG_TEXT = 1_000_000
_LOST_DIGITS = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d{1,3}")
_EXACT_NUMBERS = ("x:num", "sdval", "data-sheets-value")
#: What spreadsheets put in their HTML where a cell's exact value differs from its text.
EXACT_MARKS = tuple(mark.encode() for mark in _EXACT_NUMBERS)


def html_later(text_size: int) -> bool:
    """Whether a paste of this much text reads the text alone first and fetches the HTML
    flavour only if the text shows shortened numbers (see ``lost_digits``)."""
    return text_size > BIG_TEXT


def lost_digits(table: Table) -> bool:
    """Whether a cell shows a number the way spreadsheets shorten it ("4.12E+08")."""
    return any(
        _LOST_DIGITS.fullmatch(cell.strip()) for row in table.rows for cell in row if "E" in cell
    )


def read_clipboard(formats: dict[str, str | bytes], text_table: Table | None = None) -> Table:
    """The table on the clipboard; runs in a worker thread.

    Spreadsheets put the same cells on the clipboard twice: as tab-separated text (quoted where
    a cell holds tabs, quotes or line breaks) and as an HTML table. The HTML reading is the
    better one only where a number is shown differently from its value (Excel's "4.12E+08"),
    because the HTML carries the exact value; but it is some 30 times slower. Small pastes use
    it as ``parse_clipboard`` decides; a big one uses the text unless the text shows such
    numbers and the HTML has their exact values. ``text_table``: the text, read already (its
    rows are emptied when the HTML is read instead).
    """
    html_payload = formats.get("text/html")
    text_payload = formats.get("text/plain")
    if html_payload is None or text_payload is None or len(html_payload) < BIG_HTML:
        return parse_clipboard(formats)
    table = text_table if text_table is not None else parse_clipboard({"text/plain": text_payload})
    if isinstance(html_payload, str):
        exact = any(mark in html_payload for mark in _EXACT_NUMBERS)
    else:
        exact = any(mark in html_payload for mark in EXACT_MARKS)
    if table.rows and not (exact and lost_digits(table)):
        return table
    read = parse_clipboard(formats)
    if table is text_table and read.rows is not table.rows:
        release(table.rows)  # freed here, a slice at a time, not in one go by the UI thread
    return read
