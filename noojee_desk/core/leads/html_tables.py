"""HTML tables from the clipboard (Excel, Google Sheets, LibreOffice), read to rows of text."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

from noojee_desk.core.bulk import paused_gc
from noojee_desk.core.leads.table import ParseProblem, Table
from noojee_desk.core.leads.text_tables import _finish

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
    return _visible("".join(out))


def _visible(text: str) -> str:
    """Non-breaking spaces as spaces; a lone one is how Excel writes an empty cell that has a
    border or a format (``<td class=xl65>&nbsp;</td>``): empty."""
    return "" if text == "\u00a0" else text.replace("\u00a0", " ")


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
        if isinstance(value, str) and "e" in value.lower():
            continue  # the value itself in scientific notation: its digits are gone too
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
            text_value = _visible(space_runs(" ", content).strip(" "))
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
