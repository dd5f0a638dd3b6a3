"""Tab- and comma-separated text, and bytes of unknown encoding decoded to text."""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence

from noojee_desk.core.bulk import SLICE, paused_gc
from noojee_desk.core.leads.table import ParseProblem, Table

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
