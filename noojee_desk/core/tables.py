"""Rows of text from the clipboard (HTML tables, tab-separated text) and files (CSV, TSV, XLSX)."""

from __future__ import annotations

import codecs
import gc
import hashlib
import html
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, BinaryIO

from noojee_desk.core.layouts import SYSTEM_FIELDS, FieldLayout

_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # how many bulk jobs run now; whether the collector was on before them


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pauses Python's cycle collector during bulk work on many small objects (it would rescan
    them again and again and take a third of the time); it runs again afterwards."""
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


def gc_paused() -> bool:
    """Whether bulk work has paused the cycle collector (``paused_gc``) in some thread."""
    return _gc_pauses[0] > 0


#: Items per slice where a worker thread walks 100,000 rows in C (see ``release``).
SLICE = 5_000


def release(items: list[Any], step: int = SLICE) -> None:
    """Empties a big list a slice at a time.

    Freeing 100,000 dicts in one go is a single C call that holds the GIL for some 20 ms; a
    worker thread that does so holds up the UI thread as long. Slice by slice, it never does.
    """
    while items:
        del items[-step:]


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Something odd in the input; ``row``/``column`` count from 1 (0 / None: the whole input)."""

    row: int
    column: int | None
    message: str


@dataclass(slots=True)
class Table:
    """Rows of text cells, all rows the same width, plus what looked wrong while reading them."""

    rows: list[list[str]]
    problems: list[ParseProblem] = field(default_factory=list)
    source: str = ""  # "html", "text", "csv", "xlsx": what the rows were read from
    encoding: str = ""  # the text encoding that was detected, for text files

    @property
    def width(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    def without_blank_rows(self) -> Table:
        """The same table without rows whose cells are all empty or blank (problems renumbered)."""
        kept: list[list[str]] = []
        new_number: dict[int, int] = {}
        for number, row in enumerate(self.rows, 1):
            if any(row) and "".join(row).strip():
                kept.append(row)
                new_number[number] = len(kept)
        if len(kept) == len(self.rows):
            return Table(kept, self.problems, self.source, self.encoding)
        problems = [
            ParseProblem(new_number[p.row], p.column, p.message) if p.row else p
            for p in self.problems
            if not p.row or p.row in new_number
        ]
        return Table(kept, problems, self.source, self.encoding)


# --- tab-separated and comma-separated text ------------------------------------------------------

_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CELL_END: dict[str, re.Pattern[str]] = {}


def _cell_end(delimiter: str) -> re.Pattern[str]:
    pattern = _CELL_END.get(delimiter)
    if pattern is None:
        pattern = _CELL_END[delimiter] = re.compile(f"[{re.escape(delimiter)}\r\n]")
    return pattern


def _split_lines(text: str) -> list[str]:
    if "\r" not in text:
        return text.split("\n")
    if "\n" not in text:
        return text.split("\r")
    if text.count("\r") == text.count("\r\n"):
        return text.split("\r\n")
    return _LINE_BREAK.split(text)


def _strip_one_line_break(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


@paused_gc()
def parse_delimited(text: str, delimiter: str = "\t") -> Table:
    """Spreadsheet text: rows end with CRLF, CR or LF; a cell in double quotes may hold the
    delimiter, line breaks and doubled quotes; one trailing line break and a BOM are ignored.
    A quote that does not close a cell properly is kept as typed. Never raises."""
    problems: list[ParseProblem] = []
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text:
        return Table([], problems, "text")
    text = _strip_one_line_break(text)
    rows: list[list[str]] = []
    if '"' not in text:
        rows = [line.split(delimiter) for line in _split_lines(text)]
        return _finish(rows, problems, "text")
    n = len(text)
    pos = 0
    cell_end = _cell_end(delimiter)
    while True:
        quote = text.find('"', pos)
        if quote == -1:
            rows.extend(line.split(delimiter) for line in _split_lines(text[pos:]))
            break
        line_start = max(text.rfind("\n", pos, quote), text.rfind("\r", pos, quote), pos - 1) + 1
        if line_start > pos:
            lines = _split_lines(text[pos:line_start])
            lines.pop()  # the chunk ends with a line break: no row after it
            rows.extend(line.split(delimiter) for line in lines)
        row, pos, at_end = _scan_row(text, line_start, n, delimiter, cell_end, len(rows), problems)
        rows.append(row)
        if at_end:
            break
    return _finish(rows, problems, "text")


def _scan_row(
    text: str,
    i: int,
    n: int,
    delimiter: str,
    cell_end: re.Pattern[str],
    row_index: int,
    problems: list[ParseProblem],
) -> tuple[list[str], int, bool]:
    """One row starting at ``i``: (cells, position after its line break, whether the text ended)."""
    row: list[str] = []
    while True:
        if i < n and text[i] == '"':
            match = _QUOTED.match(text, i)
            end = match.end() if match is not None else -1
            if match is not None and (end == n or text[end] in (delimiter, "\r", "\n")):
                cell = match.group(1).replace('""', '"')
                if delimiter in cell and ("\n" in cell or "\r" in cell):
                    problems.append(
                        ParseProblem(
                            row_index + 1,
                            len(row) + 1,
                            "This cell spans several lines and holds separators: a stray quote "
                            "mark may have joined cells. Check the rows around it.",
                        )
                    )
                i = end
            else:
                stop = cell_end.search(text, i)
                j = stop.start() if stop is not None else n
                cell = text[i:j]
                i = j
                if match is None:
                    problems.append(
                        ParseProblem(
                            row_index + 1,
                            len(row) + 1,
                            "A quote mark at the start of this cell is never closed; "
                            "the cell was read as typed.",
                        )
                    )
        else:
            stop = cell_end.search(text, i)
            j = stop.start() if stop is not None else n
            cell = text[i:j]
            i = j
        row.append(cell)
        if i >= n:
            return row, i, True
        char = text[i]
        if char == delimiter:
            i += 1
            continue
        i += 2 if char == "\r" and i + 1 < n and text[i + 1] == "\n" else 1
        return row, i, False


def _finish(rows: list[list[str]], problems: list[ParseProblem], source: str) -> Table:
    """Pads short rows with empty cells; reports rows wider than the first one."""
    if rows:
        first = len(rows[0])
        widths: set[int] = set()
        for start in range(0, len(rows), SLICE):  # short C calls: see ``release``
            widths.update(map(len, rows[start : start + SLICE]))
        widest = max(widths)
        if len(widths) > 1:
            wide = 0
            for index, row in enumerate(rows):
                if len(row) > first:
                    wide += 1
                    if wide <= 20:
                        problems.append(
                            ParseProblem(
                                index + 1,
                                None,
                                f"This row has {len(row)} cells but the first row has {first}; "
                                "check it for a stray tab, comma or quote mark.",
                            )
                        )
                if len(row) < widest:
                    row.extend([""] * (widest - len(row)))
            if wide > 20:
                problems.append(
                    ParseProblem(0, None, f"{wide} rows have more cells than the first row.")
                )
    return Table(rows, problems, source)


def to_tsv(rows: Sequence[Sequence[str]]) -> str:
    """Cells as spreadsheets put them on the clipboard: tab-separated, CRLF row ends, a cell in
    double quotes when it holds a tab, a line break or a quote (``parse_tsv`` reads it back)."""

    def quote(cell: str) -> str:
        if any(ch in cell for ch in '\t\n\r"'):
            return '"' + cell.replace('"', '""') + '"'
        return cell

    return "".join("\t".join(quote(c) for c in row) + "\r\n" for row in rows)


def parse_tsv(text: str) -> Table:
    """Tab-separated text as spreadsheets put it on the clipboard."""
    return parse_delimited(text, "\t")


_DELIMITERS = ("\t", ",", ";", "|")


def sniff_delimiter(text: str, candidates: Sequence[str] = _DELIMITERS) -> str:
    """The delimiter used by ``text``: the candidate found the same number of times on most of
    the first lines (quoted parts ignored); a tab, then a comma, wins a tie."""
    sample = re.sub(r'"[^"]*"', '""', text[:65536])
    lines = [line for line in _split_lines(sample)[:50] if line.strip()]
    if len(lines) > 1 and len(sample) == 65536:
        lines.pop()  # probably cut in the middle
    best, best_score = candidates[0], (0, 0)
    for delimiter in candidates:
        counts = [line.count(delimiter) for line in lines]
        if not counts or max(counts) == 0:
            continue
        common = max(set(counts), key=lambda c: (counts.count(c), c))
        if common == 0:
            continue
        score = (counts.count(common), common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


# --- HTML tables ---------------------------------------------------------------------------------

_HTML_TOKEN = re.compile(r"[ \t\n\r\f]+|[^ \t\n\r\f]+")
_SCIENTIFIC_TEXT = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
_SKIPPED_TAGS = frozenset({"style", "script", "head", "title", "template"})


class _TableParser(HTMLParser):
    """Collects the cells of the first table of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.rows: list[list[str]] = []
        self.depth = 0
        self.done = False
        self.skip = 0
        self.row: list[str] | None = None
        self.pieces: list[tuple[str, bool]] | None = None  # (text, written as a reference)
        self.colspan = 1
        self.rowspan = 1
        self.excel_number: str | None = None
        self.sheets_value: str | None = None
        self.spans: dict[int, int] = {}  # column -> rows it still covers

    # Parser events -------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag in _SKIPPED_TAGS:
            self.skip += 1
            return
        if tag == "table":
            self.depth += 1
            return
        if self.depth == 0:
            return
        if self.depth > 1:  # a table inside a cell: keep its text in the cell
            if self.pieces is not None and tag in ("tr", "br", "p", "div"):
                self.pieces.append(("\n", True))
            return
        if tag == "tr":
            self._end_row()
            self.row = []
        elif tag in ("td", "th"):
            self._end_cell()
            if self.row is None:
                self.row = []
            self.pieces = []
            values = dict(attrs)
            self.colspan = _span(values.get("colspan"))
            self.rowspan = _span(values.get("rowspan"))
            self.excel_number = values.get("x:num") or values.get("sdval")
            self.sheets_value = values.get("data-sheets-value")
        elif self.pieces is not None:
            block = tag in ("p", "div", "li") and any(text.strip() for text, _ in self.pieces)
            if tag == "br" or block:
                self.pieces.append(("\n", True))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.handle_starttag(tag, attrs)
        elif tag in ("td", "th"):
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.done:
            return
        if tag in _SKIPPED_TAGS:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "table":
            if self.depth == 1:
                self._end_row()
                if self.rows:
                    self.done = True
            self.depth = max(0, self.depth - 1)
            return
        if self.depth != 1:
            return
        if tag in ("td", "th"):
            self._end_cell()
        elif tag == "tr":
            self._end_row()

    def handle_data(self, data: str) -> None:
        if self.pieces is not None and not self.skip and not self.done:
            self.pieces.append((data, False))

    def handle_entityref(self, name: str) -> None:
        self._reference(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._reference(f"&#{name};")

    def _reference(self, text: str) -> None:
        if self.pieces is not None and not self.skip and not self.done:
            self.pieces.append((html.unescape(text), True))

    # Building rows -------------------------------------------------------------------------------
    def _fill_spans(self) -> None:
        assert self.row is not None
        while self.spans.get(len(self.row), 0) > 0:
            column = len(self.row)
            self.spans[column] -= 1
            self.row.append("")

    def _end_cell(self) -> None:
        if self.pieces is None or self.row is None:
            self.pieces = None
            return
        text = _cell_text(self.pieces)
        if _SCIENTIFIC_TEXT.fullmatch(text):
            text = _exact_number(self.excel_number, self.sheets_value) or text
        self._fill_spans()
        start = len(self.row)
        self.row.append(text)
        self.row.extend([""] * (self.colspan - 1))
        if self.rowspan > 1:
            for column in range(start, start + self.colspan):
                self.spans[column] = self.rowspan - 1
        self.pieces = None

    def _end_row(self) -> None:
        self._end_cell()
        if self.row is not None:
            self._fill_spans()
            # Columns still covered by a row span further right.
            if self.spans and max(self.spans) >= len(self.row):
                for column in range(len(self.row), max(self.spans) + 1):
                    if self.spans.get(column, 0) > 0:
                        self.spans[column] -= 1
                    self.row.append("")
            self.rows.append(self.row)
        self.row = None


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def _cell_text(pieces: list[tuple[str, bool]]) -> str:
    """A cell's text as a browser shows it: source white space collapsed, <br> as a line break,
    character references kept as written, non-breaking spaces as spaces."""
    out: list[str] = []
    pending_space = False
    line_start = True
    for text, literal in pieces:
        if literal:
            if text == "\n":
                out.append("\n")
                pending_space = False
                line_start = True
                continue
            if pending_space and not line_start:
                out.append(" ")
            out.append(text)
            pending_space = False
            line_start = False
            continue
        for token in _HTML_TOKEN.finditer(text):
            part = token.group()
            if part[0] in " \t\n\r\f":
                pending_space = True
                continue
            if pending_space and not line_start:
                out.append(" ")
            out.append(part)
            pending_space = False
            line_start = False
    if out and out[-1] == "\n":
        out.pop()  # a line break that ends a cell shows nothing (LibreOffice writes <td><br></td>)
    return "".join(out).replace("\u00a0", " ")


def _exact_number(excel_number: str | None, sheets_value: str | None) -> str | None:
    """The full digits of a number the spreadsheet showed in scientific notation, when its HTML
    carries the value (Excel's ``x:num``, LibreOffice's ``sdval``, Google Sheets'
    ``data-sheets-value``)."""
    candidates: list[object] = []
    if excel_number:
        candidates.append(excel_number)
    if sheets_value:
        try:
            data = json.loads(sheets_value)
            if isinstance(data, dict):
                candidates.append(data.get("3"))
        except ValueError:
            pass
    for value in candidates:
        try:
            number = float(str(value))
        except (TypeError, ValueError):
            continue
        if number.is_integer() and abs(number) < 1e17:
            return str(int(number))
    return None


@paused_gc()
def parse_html(text: str) -> Table:
    """The first table of an HTML document (what Excel, Google Sheets and LibreOffice put on the
    clipboard). No table gives no rows. Never raises."""
    start = text.find("<")
    if start > 0:
        text = text[start:]  # e.g. the "Version:0.9 StartHTML:..." header of Windows' HTML Format
    try:
        rows = _quick_html_rows(text)
    except Exception:  # the quick reader gives up on anything unusual; html.parser decides
        rows = None
    if rows is not None:
        return _finish(rows, [], "html")
    return _parse_html_fully(text)


def _parse_html_fully(text: str) -> Table:
    """The first table, read with html.parser: any HTML, about four times slower."""
    problems: list[ParseProblem] = []
    parser = _TableParser()
    try:
        parser.feed(text)
        parser.close()
        parser._end_row()
    except Exception as exc:  # html.parser is lenient; this is a last resort
        problems.append(ParseProblem(0, None, f"Part of the copied table could not be read: {exc}"))
    return _finish(parser.rows, problems, "html")


_TABLE_START = re.compile(r"<table\b", re.IGNORECASE)
_TABLE_END = re.compile(r"</table\s*>", re.IGNORECASE)
_TABLE_END_START = re.compile(r"</table", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HIDDEN_OPEN = re.compile(r"<!--|<(?:style|script|template|textarea|title|xmp)\b", re.IGNORECASE)
_ROW_OR_CELL = re.compile(
    r"<!--.*?-->|<(/?)tr\b[^>]*>|<t([dh])\b([^>]*)>(.*?)</t[dh]\s*>", re.IGNORECASE | re.DOTALL
)
_CELL_OPEN = re.compile(r"<[tT][dDhH]\b")
_HTML_SPACE_RUN = re.compile(r"[ \t\n\r\f]+")
_NESTED = re.compile(r"<(?:t[dhr]|table)\b|<!--", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
_INLINE_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][^\s/>]*)[^>]*>|&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)|[^<&]+|[<&]"
)


def _has_special_attribute(attributes: str) -> bool:
    """Whether a cell's attributes may span columns or rows or carry a number's exact value."""
    lowered = attributes.lower()
    return (
        "span" in lowered or "x:num" in lowered or "sdval" in lowered or "sheets-value" in lowered
    )


def _quick_html_rows(text: str) -> list[list[str]] | None:
    """The rows of the first table of plain spreadsheet HTML (every cell closed, no nested
    tables); None for anything else."""
    found = _TABLE_START.search(text)
    if found is None:
        return []
    if _HIDDEN_OPEN.search(_COMMENT.sub("", _strip_closed_blocks(text[: found.start()]))):
        return None  # the table may sit inside a comment or a style block
    start = found.end()
    end = _find(_TABLE_END_START, text, start, len(text), _TABLE_END)
    if end == -1:
        return None
    if _find(_TABLE_START, text, start, end) != -1 or text.rfind("<!--", start, end) > text.rfind(
        "-->", start, end
    ):
        return None  # a nested table, or a comment that hides the end
    parser = _TableParser()  # its row, span and number logic, driven without html.parser
    nested = _NESTED.search
    space_runs = _HTML_SPACE_RUN.sub
    scientific = _SCIENTIFIC_TEXT.fullmatch
    cells = 0
    for match in _ROW_OR_CELL.finditer(text, start, end):
        closing_row, kind, attributes, content = match.groups()
        if kind is None:
            if closing_row is not None:  # <tr> or </tr>; else a comment
                parser._end_row()
                if not closing_row:
                    parser.row = []
            continue
        cells += 1
        row = parser.row
        if row is None:
            row = parser.row = []
        special = bool(attributes) and _has_special_attribute(attributes)
        if not parser.spans and not special and "<" not in content and "&" not in content:
            # The common cell: plain text.
            text_value = space_runs(" ", content).strip(" ").replace("\u00a0", " ")
            if not scientific(text_value):
                row.append(text_value)
                continue
        if nested(content):
            return None  # a cell left open: let html.parser sort it out
        parser.colspan = parser.rowspan = 1
        parser.excel_number = parser.sheets_value = None
        if special:
            values = {
                k.lower(): html.unescape(v.strip("\"'")) if v else ""
                for k, v in _ATTRIBUTE.findall(attributes)
            }
            parser.colspan = _span(values.get("colspan"))
            parser.rowspan = _span(values.get("rowspan"))
            parser.excel_number = values.get("x:num") or values.get("sdval")
            parser.sheets_value = values.get("data-sheets-value")
        parser.pieces = _inline_pieces(content)
        parser._end_cell()
    if cells != _count_cell_opens(text, start, end):
        return None  # cells without their closing tag
    parser._end_row()
    return parser.rows


def _find(
    start_of: re.Pattern[str],
    text: str,
    start: int,
    end: int,
    whole: re.Pattern[str] | None = None,
    step: int = 1 << 20,
) -> int:
    """Where ``start_of`` (a pattern of fixed length) first matches in ``text[start:end]``,
    and ``whole`` matches from there too; -1 if nowhere. It searches a megabyte at a time,
    the slices overlapping by 64 characters: one search through 30 MB is a single C call that
    holds the GIL for some 40 ms."""
    while start < end:
        stop = min(start + step, end)
        found = start_of.search(text, start, min(stop + 64, end))
        if found is None or found.start() >= stop:  # the next slice has it
            start = stop
            continue
        at = found.start()
        if start_of.match(text, at, end) and (whole is None or whole.match(text, at, end)):
            return at
        start = at + 1
    return -1


def _count_cell_opens(text: str, start: int, end: int, step: int = 1 << 20) -> int:
    """How many cells open in ``text[start:end]``, a megabyte at a time: one search through
    30 MB is a single C call that holds the GIL for some 150 ms. Each slice ends where a tag
    begins, so no ``<td`` is cut in two."""
    count = 0
    while start < end:
        stop = text.find("<", min(start + step, end), end)
        stop = end if stop == -1 else stop
        count += len(_CELL_OPEN.findall(text, start, stop))
        start = stop
    return count


def _strip_closed_blocks(text: str) -> str:
    """``text`` without its complete <style>/<script> blocks."""
    return re.sub(
        r"<(style|script|template|textarea|title|xmp)\b.*?</\1\s*>",
        "",
        text,
        flags=re.IGNORECASE | re.DOTALL,
    )


def _inline_pieces(content: str) -> list[tuple[str, bool]]:
    """A cell's content as (text, written as a reference) pieces, as _TableParser collects them."""
    pieces: list[tuple[str, bool]] = []
    for match in _INLINE_TOKEN.finditer(content):
        token = match.group(0)
        if token[0] == "<" and match.group(2) is not None:
            tag = match.group(2).lower()
            if match.group(1):
                continue
            block = tag in ("p", "div", "li") and any(text.strip() for text, _ in pieces)
            if tag == "br" or block:
                pieces.append(("\n", True))
        elif token[0] == "&" and match.group(3) is not None:
            pieces.append((html.unescape(token), True))
        else:
            pieces.append((token, False))
    return pieces


# --- bytes and the clipboard ---------------------------------------------------------------------


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) for bytes of unknown encoding: a BOM (UTF-8, UTF-16, UTF-32), UTF-16
    without a BOM, UTF-8, then Windows-1252 (Latin-1 for its five undefined bytes)."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return _decode(data[len(bom) :], name, "replace"), name + "-sig"
    sample = data[:4096]
    if len(sample) >= 4:
        odd_nuls = sample[1::2].count(0)
        even_nuls = sample[0::2].count(0)
        half = len(sample) // 2
        if odd_nuls > half * 0.6 and even_nuls < half * 0.1:
            return _decode(data, "utf-16-le", "replace"), "utf-16-le"
        if even_nuls > half * 0.6 and odd_nuls < half * 0.1:
            return _decode(data, "utf-16-be", "replace"), "utf-16-be"
    try:
        return _decode(data, "utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return _decode(data, "cp1252"), "cp1252"
    except UnicodeDecodeError:
        return _decode(data, "cp1252", "replace"), "cp1252"


def _decode(data: bytes, encoding: str, errors: str = "strict", step: int = 1 << 20) -> str:
    """``data.decode(encoding, errors)``, a megabyte at a time: decoding 30 MB in one call
    holds the GIL for some 35 ms (clipboards are read in a worker thread)."""
    if len(data) <= step:
        return data.decode(encoding, errors)
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    view = memoryview(data)
    parts = [decoder.decode(view[i : i + step]) for i in range(0, len(data), step)]
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def _as_text(payload: str | bytes | bytearray | memoryview | None) -> str:
    if payload is None:
        return ""
    if isinstance(payload, str):
        return payload
    return decode_text(bytes(payload))[0]


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


# --- files ---------------------------------------------------------------------------------------

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


# --- header detection and column mappings --------------------------------------------------------


def _key(text: str) -> str:
    """A name reduced for comparison: "Post code" and "POSTCODE" both give "postcode"."""
    return "".join(c for c in text.casefold() if c.isalnum())


_CONCEPT_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "fullname",
        "contactname",
        "customername",
        "customer",
        "clientname",
        "client",
        "leadname",
        "contact",
        "person",
    ),
    "firstname": ("firstname", "first", "givenname", "given", "fname", "forename"),
    "lastname": ("lastname", "surname", "familyname", "last", "lname"),
    "street": (
        "streetaddress",
        "address",
        "street",
        "address1",
        "addressline1",
        "addr",
        "homeaddress",
        "postaladdress",
        "streetaddress1",
    ),
    "address2": ("address2", "addressline2", "streetaddress2"),
    "city": ("city", "suburb", "town", "locality", "suburbtown", "citysuburb", "suburbcity"),
    "state": ("state", "province", "territory", "county", "statecode"),
    "postcode": ("postcode", "postalcode", "zip", "zipcode", "pcode", "postzip", "pc"),
    "country": ("country", "countrycode"),
    "email": ("email", "emailaddress", "mail", "emailid"),
    "company": (
        "company",
        "companyname",
        "business",
        "businessname",
        "organisation",
        "organization",
        "employer",
    ),
    "njExternalLeadId": (
        "njexternalleadid",
        "externalleadid",
        "externalid",
        "leadid",
        "reference",
        "ref",
        "refno",
        "id",
        "customerid",
        "clientid",
    ),
    "njCallBackDate": (
        "njcallbackdate",
        "callbackdate",
        "callback",
        "callbacktime",
        "callbackdatetime",
        "callbackat",
        "callbackon",
    ),
    "njPriority": ("njpriority", "priority", "leadpriority"),
    "njContactHours": ("njcontacthours", "contacthours", "contacthourszone"),
}
_ALIAS_TO_CONCEPT = {alias: c for c, aliases in _CONCEPT_ALIASES.items() for alias in aliases}
_PHONE_ALIAS = re.compile(
    r"(first|second|third|fourth|primary|secondary|alt|alternate|alternative|other|home|work|"
    r"business|office|direct|contact|main|daytime|evening)?"
    r"(phone|phones|mobile|mob|cell|cellphone|tel|telephone|ph|landline|number|phonenumber|"
    r"mobilephone|mobilenumber|contactnumber|telno|mobileno|phoneno)"
    r"(number|no|num)?(\d{0,2})"
)
_ORDINALS = {"first": 1, "primary": 1, "main": 1, "second": 2, "secondary": 2, "third": 3}
_ORDINALS["fourth"] = 4


def _phone_index(key: str) -> tuple[bool, int | None]:
    """(is a phone header, its position among the phone fields when it says so)."""
    match = _PHONE_ALIAS.fullmatch(key)
    if match is None:
        return False, None
    prefix, _, _, digits = match.groups()
    if digits:
        return True, int(digits)
    if prefix in _ORDINALS:
        return True, _ORDINALS[prefix]
    return True, None


def header_signature(cells: Sequence[str]) -> str:
    """A key for a header row: the same headings (any case, spacing) give the same key."""
    normal = "\x1f".join(" ".join(str(c).casefold().split()) for c in cells)
    digest = hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"h{len(cells)}:{digest}"


def headerless_signature(width: int) -> str:
    """The key for rows pasted without a header row, by their number of columns."""
    return f"n{width}"


def mapping_key(header: Sequence[str], has_header: bool) -> str:
    """The key under which the mapping for these rows is saved."""
    return header_signature(header) if has_header else headerless_signature(len(header))


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which field each source column goes to (None: not sent). Several columns may feed one
    field ("First name" + "Surname" -> "Name"); their values are joined with a space."""

    targets: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.targets)

    def target(self, column: int) -> str | None:
        return self.targets[column] if 0 <= column < len(self.targets) else None

    def columns_of(self, field_name: str) -> list[int]:
        return [i for i, t in enumerate(self.targets) if t == field_name]

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields that receive a column, in column order, each once."""
        return tuple(dict.fromkeys(t for t in self.targets if t))

    def with_target(self, column: int, field_name: str | None) -> ColumnMapping:
        """This mapping with ``column`` sent to ``field_name`` (None: not sent)."""
        targets = list(self.targets)
        if column >= len(targets):
            targets.extend([None] * (column + 1 - len(targets)))
        targets[column] = field_name or None
        return ColumnMapping(tuple(targets))

    def to_list(self) -> list[str | None]:
        return list(self.targets)

    @classmethod
    def from_list(cls, values: object, layout: FieldLayout, width: int) -> ColumnMapping | None:
        """A mapping from stored data; None when it does not fit ``width`` columns. Targets that
        are no longer fields of ``layout`` are dropped."""
        if not isinstance(values, list | tuple) or len(values) != width:
            return None
        allowed = set(layout.mappable_names)
        targets = tuple(v if isinstance(v, str) and v in allowed else None for v in values)
        return cls(targets)


def mapping_entry(
    header: Sequence[str], has_header: bool, mapping: ColumnMapping
) -> tuple[str, list[str | None]]:
    """(key, value) to keep in the saved mappings so the same paste maps itself next time."""
    return mapping_key(header, has_header), mapping.to_list()


def _looks_like_data(cell: str) -> bool:
    text = cell.strip()
    if not text:
        return False
    digits = sum(c.isdigit() for c in text)
    if digits >= 6 and digits >= 0.5 * len(text):
        return True  # a phone number, a date, an amount
    if "@" in text and "." in text.split("@")[-1]:
        return True  # an e-mail address
    return bool(re.fullmatch(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}.*", text))


def _looks_like_phone(cell: str) -> bool:
    text = cell.strip()
    digits = sum(c.isdigit() for c in text)
    return 8 <= digits <= 15 and digits >= 0.6 * len(text) and "@" not in text


def _guess_targets(header: Sequence[str], layout: FieldLayout) -> tuple[list[str | None], int]:
    """A target per heading, and how many headings were recognised."""
    targets: list[str | None] = [None] * len(header)
    taken: set[str] = set()
    by_key = {_key(name): name for name in layout.mappable_names}
    phone_fields = list(layout.phone_fields)
    recognised = 0
    keys = [_key(str(cell)) for cell in header]

    # 1. Exact names.
    for i, key in enumerate(keys):
        name = by_key.get(key)
        if key and name is not None and name not in taken:
            targets[i] = name
            taken.add(name)
            recognised += 1

    # 2. Phone headings, numbered ones first.
    numbered: list[tuple[int, int]] = []
    plain: list[int] = []
    for i, key in enumerate(keys):
        if targets[i] is not None or not key:
            continue
        is_phone, index = _phone_index(key)
        if is_phone and index:
            numbered.append((i, index))
        elif is_phone:
            plain.append(i)
    recognised += len(numbered) + len(plain)
    for i, index in numbered:
        if 1 <= index <= len(phone_fields) and phone_fields[index - 1] not in taken:
            targets[i] = phone_fields[index - 1]
            taken.add(phone_fields[index - 1])
        else:
            plain.append(i)  # "Phone 3" with two phone fields: the next free one, if any
    for i in sorted(plain):
        free = [f for f in phone_fields if f not in taken]
        if free:
            targets[i] = free[0]
            taken.add(free[0])

    # 3. Other known headings.
    concept_fields: dict[str, list[str]] = {}
    for name in layout.mappable_names:
        concept = _ALIAS_TO_CONCEPT.get(_key(name))
        if concept is not None:
            concept_fields.setdefault(concept, []).append(name)
    for system in SYSTEM_FIELDS:
        concept_fields.setdefault(system, [system])
    for i, key in enumerate(keys):
        if targets[i] is not None or not key:
            continue
        concept = _ALIAS_TO_CONCEPT.get(key)
        if concept is None:
            continue
        recognised += 1
        free = [f for f in concept_fields.get(concept, []) if f not in taken]
        if free:
            targets[i] = free[0]
            taken.add(free[0])

    # 4. First name + surname into a single name field.
    name_fields = [f for f in concept_fields.get("name", []) if f not in taken]
    if name_fields and not concept_fields.get("firstname") and not concept_fields.get("lastname"):
        parts = [
            i
            for i, key in enumerate(keys)
            if targets[i] is None and _ALIAS_TO_CONCEPT.get(key) in ("firstname", "lastname")
        ]
        if parts:
            for i in parts:
                targets[i] = name_fields[0]

    # 5. A field name inside a longer heading ("Customer Email Address" -> "Email").
    for i, key in enumerate(keys):
        if targets[i] is not None or len(key) < 4:
            continue
        for name in layout.mappable_names:
            field_key = _key(name)
            if name not in taken and len(field_key) >= 4 and field_key in key:
                targets[i] = name
                taken.add(name)
                recognised += 1
                break
    return targets, recognised


def _content_targets(
    width: int, rows: Sequence[Sequence[str]], layout: FieldLayout
) -> list[str | None]:
    """Targets for rows without a header: the layout's order, unless the phone numbers sit in
    other columns; then phone columns go to the phone fields and the rest follow in order."""
    names = list(layout.names)
    positional: list[str | None] = [names[i] if i < len(names) else None for i in range(width)]
    phone_columns = set()
    for column in range(width):
        values = [r[column] for r in rows if column < len(r) and r[column].strip()]
        if values and sum(_looks_like_phone(v) for v in values) >= max(1, len(values) / 2):
            phone_columns.add(column)
    phone_fields = set(layout.phone_fields)
    positional_phone = {i for i, t in enumerate(positional) if t in phone_fields}
    if not phone_columns or phone_columns <= positional_phone:
        return positional
    targets: list[str | None] = [None] * width
    free_phones = [f for f in layout.names if f in phone_fields]
    others = [f for f in layout.names if f not in phone_fields]
    for column in range(width):
        pool = free_phones if column in phone_columns else others
        if pool:
            targets[column] = pool.pop(0)
    return targets


def detect_mapping(
    header: Sequence[str],
    layout: FieldLayout,
    saved: Mapping[str, list[str | None]] | None = None,
    sample: Sequence[Sequence[str]] = (),
) -> tuple[bool, ColumnMapping]:
    """Whether ``header`` (the first row) is a header row, and where each column goes.

    A mapping saved for the same headings (or, without headings, the same number of columns)
    is used as it is. ``sample``: a few of the following rows, to tell data from headings."""
    header = [str(c) for c in header]
    width = len(header)
    saved = saved or {}
    stored = ColumnMapping.from_list(saved.get(header_signature(header)), layout, width)
    if stored is not None:
        return True, stored
    targets, recognised = _guess_targets(header, layout)
    data_like = any(_looks_like_data(c) for c in header)
    has_header = recognised > 0 and not data_like
    if not has_header and not data_like and sample:
        # Unknown headings above columns of numbers: still a header row.
        for column in range(width):
            values = [r[column] for r in sample if column < len(r) and r[column].strip()]
            if (
                header[column].strip()
                and values
                and sum(_looks_like_phone(v) for v in values) >= max(1, len(values) / 2)
            ):
                has_header = True
                break
    if has_header:
        if not any(t in layout.phone_fields for t in targets) and sample:
            # No phone heading recognised: find the phone column by its content.
            content = _content_targets(width, sample, layout)
            for column, target in enumerate(content):
                if (
                    target in layout.phone_fields
                    and targets[column] is None
                    and target not in targets
                ):
                    targets[column] = target
        return True, ColumnMapping(tuple(targets))
    stored = ColumnMapping.from_list(saved.get(headerless_signature(width)), layout, width)
    if stored is not None:
        return False, stored
    rows = [header, *sample]
    return False, ColumnMapping(tuple(_content_targets(width, rows, layout)))


@paused_gc()
def apply_mapping(rows: Iterable[Sequence[str]], mapping: ColumnMapping) -> list[dict[str, str]]:
    """One dict of field -> text per row; columns mapped to one field are joined with a space."""
    pairs = [(i, t) for i, t in enumerate(mapping.targets) if t]
    if not pairs:
        return [{} for _ in rows]
    fields = [t for _, t in pairs]
    if len(set(fields)) == len(fields):
        indexes = [i for i, _ in pairs]
        needed = max(indexes) + 1
        out = []
        for row in rows:
            if len(row) < needed:
                row = [*row, *([""] * (needed - len(row)))]
            out.append(dict(zip(fields, [row[i] for i in indexes], strict=True)))
        return out
    groups: dict[str, list[int]] = {}
    for i, t in pairs:
        groups.setdefault(t, []).append(i)
    result = []
    for row in rows:
        record = {}
        for name, columns in groups.items():
            values = [row[i].strip() for i in columns if i < len(row) and row[i].strip()]
            record[name] = " ".join(values)
        result.append(record)
    return result
