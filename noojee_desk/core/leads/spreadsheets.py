"""Files of leads: CSV, TSV and XLSX read to a table, with a reason when one cannot be read."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from noojee_desk.core.bulk import paused_gc
from noojee_desk.core.leads.html_tables import parse_html
from noojee_desk.core.leads.table import ParseProblem, Table
from noojee_desk.core.leads.text_tables import (
    _finish,
    decode_text,
    parse_delimited,
    sniff_delimiter,
)

#: The most columns a sheet's table may have (a lead file has tens): cells further right end
#: the read with a message rather than a table as wide as the sheet.
MAX_COLUMNS = 1_000
#: The most cells (rows times the widest row) a sheet's table may have.
MAX_CELLS = 5_000_000
#: The biggest CSV, TSV or text file read (a file of 5,000,000 cells is some 60 MB).
MAX_TEXT_BYTES = 100 * 1024 * 1024
#: The most lines a CSV, TSV or text file may have.
MAX_TEXT_ROWS = 1_000_000
#: Text files are read this much at a time (the caps are checked as it comes).
_CHUNK = 1024 * 1024

_XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xltx", ".xltm"})
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class _TooBig(Exception):
    """A file or sheet past one of the caps (``MAX_COLUMNS``, ``MAX_CELLS``,
    ``MAX_TEXT_BYTES``, ``MAX_TEXT_ROWS``); the message says which and how to fix it."""


@paused_gc()
def read_file(path: str | Path, sheet: str | None = None) -> Table:
    """Rows of a CSV, TSV, TXT or XLSX file (the first sheet, or ``sheet``); blank rows dropped,
    each row keeping its number in the file (``Table.row_numbers``). Every cell is text. An
    unreadable file gives a Table with a problem; never raises."""
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
        data = _read_text_file(file)
    except _TooBig as exc:
        return _problem_table(str(exc))
    except OSError as exc:
        return _problem_table(f"{file.name} could not be opened: {exc.strerror or exc}.")
    except Exception as exc:
        return _problem_table(f"{file.name} could not be read: {_reason(exc)}.")
    try:
        text, encoding = decode_text(data)
        del data
        if text.lstrip()[:1] == "<" and "<table" in text[:100000].lower():
            table = parse_html(text)
        else:
            suffix = file.suffix.lower()
            delimiter = "\t" if suffix in (".tsv", ".tab") else sniff_delimiter(text)
            _check_cells(text, delimiter, file.name)
            table = parse_delimited(text, delimiter)
            table.source = "csv" if delimiter != "\t" else "text"
        table.encoding = encoding
        return table.without_blank_rows()
    except _TooBig as exc:
        return _problem_table(str(exc))
    except Exception as exc:
        return _problem_table(f"{file.name} could not be read: {_reason(exc)}.")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


_SPLIT = "Split it into smaller files and import them one by one."


def _read_text_file(file: Path) -> bytes:
    """The bytes of a text file, read a megabyte at a time; raises _TooBig past
    ``MAX_TEXT_BYTES`` or ``MAX_TEXT_ROWS`` lines, before holding more than the cap."""
    size = file.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise _TooBig(
            f"{file.name} is too big to import: it is {_megabytes(size)}; at most "
            f"{_megabytes(MAX_TEXT_BYTES)} of CSV or text can be read. {_SPLIT}"
        )
    chunks: list[bytes] = []
    total = newlines = returns = 0
    with file.open("rb") as handle:  # the size may lie (a device, a file still being written)
        while chunk := handle.read(_CHUNK):
            total += len(chunk)
            if total > MAX_TEXT_BYTES:
                raise _TooBig(
                    f"{file.name} is too big to import: it is over "
                    f"{_megabytes(MAX_TEXT_BYTES)}, the most CSV or text that can be read. "
                    + _SPLIT
                )
            newlines += chunk.count(b"\n")
            returns += chunk.count(b"\r")
            if max(newlines, returns) > MAX_TEXT_ROWS:
                raise _TooBig(
                    f"{file.name} is too big to import: it has over {MAX_TEXT_ROWS:,} rows "
                    f"(read so far: {_megabytes(total)}); at most {MAX_TEXT_ROWS:,} rows can "
                    f"be read. {_SPLIT}"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def _check_cells(text: str, delimiter: str, name: str) -> None:
    """Raises _TooBig when the text has more than ``MAX_CELLS`` cells (counted by its
    separators, a megabyte at a time, before any cell is made)."""
    cells = 1
    for start in range(0, len(text), _CHUNK):
        part = text[start : start + _CHUNK]
        cells += part.count(delimiter) + part.count("\n")
        if cells > MAX_CELLS:
            raise _TooBig(
                f"{name} is too big to import: more than {MAX_CELLS:,} cells (counting its "
                f"separators); at most {MAX_CELLS:,} cells can be read. {_SPLIT}"
            )


def _reason(exc: BaseException) -> str:
    """Why a read failed, in words, also for errors that carry none (MemoryError)."""
    if isinstance(exc, MemoryError):
        return "it is too big to read in the memory this computer has free"
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


def _column_name(number: int) -> str:
    name = ""
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(65 + rest) + name
    return name


def _sheet_rows(worksheet: Any, name: str) -> tuple[list[list[str]], list[int]]:
    """The sheet's rows by the cells that exist: empty rows skipped, each row without its empty
    cells at the end, and each row's number in the sheet; raises _TooBig past the caps (memory
    stays in proportion to the cells)."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    widest = 0
    # From the sheet's row 1: the numbers are the ones the spreadsheet shows.
    for number, values in enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1):
        end = len(values)
        while end and (values[end - 1] is None or values[end - 1] == ""):
            end -= 1
        if not end:
            continue  # a missing or empty row (blank rows are dropped anyway)
        row = [cell_text(v) for v in values[:end]]
        while row and not row[-1].strip():
            row.pop()
        if not row:
            continue
        if len(row) > MAX_COLUMNS:
            raise _TooBig(
                f"{name} is too big to import: it has a cell in column {_column_name(len(row))} "
                f"({len(row):,} columns across); at most {MAX_COLUMNS:,} columns can be read. "
                "Delete the far-away cells (or copy only the leads to a new sheet) and try again."
            )
        widest = max(widest, len(row))
        rows.append(row)
        numbers.append(number)
        if len(rows) * widest > MAX_CELLS:
            raise _TooBig(
                f"{name} is too big to import: more than {MAX_CELLS:,} cells "
                f"({len(rows):,} rows of up to {widest:,} columns so far); at most "
                f"{MAX_CELLS:,} cells can be read. {_SPLIT}"
            )
    return rows, numbers


def _read_workbook(handle: BinaryIO, name: str, sheet: str | None) -> Table:
    import openpyxl  # imported here: it is only needed for spreadsheet files

    try:
        workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:
        return _problem_table(
            f"{name} could not be read as an Excel workbook ({_reason(exc)}).",
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
        rows, numbers = _sheet_rows(worksheet, name)
    except _TooBig as exc:
        return _problem_table(str(exc))
    except Exception as exc:
        return _problem_table(f"{name} could not be read: {_reason(exc)}.")
    finally:
        workbook.close()
    table = _finish(rows, [], "xlsx")
    table.problems = []  # rows of different lengths are normal in a sheet
    table.source_rows = numbers
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
