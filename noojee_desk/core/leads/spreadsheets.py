"""Files of leads: CSV, TSV and XLSX read to a table, with a reason when one cannot be read."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import BinaryIO

from noojee_desk.core.bulk import paused_gc
from noojee_desk.core.leads.html_tables import parse_html
from noojee_desk.core.leads.table import ParseProblem, Table
from noojee_desk.core.leads.text_tables import (
    _finish,
    decode_text,
    parse_delimited,
    sniff_delimiter,
)

_XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xltx", ".xltm"})
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@paused_gc()
def read_file(path: str | Path, sheet: str | None = None) -> Table:
    """Rows of a CSV, TSV, TXT or XLSX file (the first sheet, or ``sheet``); blank rows dropped.
    Every cell is text. An unreadable file gives a Table with a problem; never raises."""
    file = Path(path)
    try:
        if file.suffix.lower() in _XLSX_SUFFIXES:
            return read_xlsx(file, sheet)
        with file.open("rb") as handle:
            head = handle.read(8)
        if head.startswith(_ZIP_MAGIC):
            if file.suffix.lower() == ".ods":
                return _problem_table(f"{file.name} is an OpenDocument spreadsheet.", _SAVE_AS)
            return read_xlsx(file, sheet)
        if head.startswith(_OLE_MAGIC):
            return _problem_table(f"{file.name} is in the old Excel format (.xls).", _SAVE_AS)
        data = file.read_bytes()
    except OSError as exc:
        return _problem_table(f"{file.name} could not be opened: {exc.strerror or exc}.")
    except Exception as exc:
        return _problem_table(f"{file.name} could not be read: {exc}.")
    try:
        text, encoding = decode_text(data)
        if text.lstrip()[:1] == "<" and "<table" in text[:100000].lower():
            table = parse_html(text)
        else:
            suffix = file.suffix.lower()
            delimiter = "\t" if suffix in (".tsv", ".tab") else sniff_delimiter(text)
            table = parse_delimited(text, delimiter)
            table.source = "csv" if delimiter != "\t" else "text"
        table.encoding = encoding
        return table.without_blank_rows()
    except Exception as exc:
        return _problem_table(f"{file.name} could not be read: {exc}.")


_SAVE_AS = "Open it in your spreadsheet and save it as .xlsx or .csv, then import that file."


def _problem_table(*sentences: str) -> Table:
    return Table([], [ParseProblem(0, None, " ".join(sentences))])


def cell_text(value: object) -> str:
    """A spreadsheet cell value as text, without turning anything into a number."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.strftime("%Y-%m-%d")
        if value.second or value.microsecond:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


@paused_gc()
def read_xlsx(path: str | Path, sheet: str | None = None) -> Table:
    """The rows of one sheet of an .xlsx file, read with openpyxl in read-only mode."""
    file = Path(path)
    try:
        with file.open("rb") as handle:  # a file object: any file name extension is fine
            return _read_workbook(handle, file.name, sheet)
    except OSError as exc:
        return _problem_table(f"{file.name} could not be opened: {exc.strerror or exc}.")


def _read_workbook(handle: BinaryIO, name: str, sheet: str | None) -> Table:
    import openpyxl  # imported here: it is only needed for spreadsheet files

    try:
        workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:
        return _problem_table(
            f"{name} could not be read as an Excel workbook ({type(exc).__name__}: {exc}).",
            _SAVE_AS,
        )
    try:
        if sheet is not None:
            if sheet not in workbook.sheetnames:
                names = ", ".join(repr(n) for n in workbook.sheetnames)
                return _problem_table(f"{name} has no sheet called {sheet!r}; it has {names}.")
            worksheet = workbook[sheet]
        else:
            if not workbook.worksheets:
                return _problem_table(f"{name} has no worksheet.")
            worksheet = workbook.worksheets[0]
        if hasattr(worksheet, "reset_dimensions"):
            worksheet.reset_dimensions()  # the stored size is often wrong; read every cell
        rows = [[cell_text(v) for v in row] for row in worksheet.iter_rows(values_only=True)]
    except Exception as exc:
        return _problem_table(f"{name} could not be read: {exc}.")
    finally:
        workbook.close()
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    table = _finish(rows, [], "xlsx")
    table.problems = []  # rows of different lengths are normal in a sheet
    return table.without_blank_rows()


def sheet_names(path: str | Path) -> list[str]:
    """The names of the sheets of an .xlsx file ([] when it cannot be read)."""
    import openpyxl

    try:
        with Path(path).open("rb") as handle:
            workbook = openpyxl.load_workbook(handle, read_only=True)
            try:
                return list(workbook.sheetnames)
            finally:
                workbook.close()
    except Exception:
        return []
