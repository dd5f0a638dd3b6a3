"""A table of text cells read from a paste or a file, with what looked wrong while reading it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Something odd in the input; ``row``/``column`` count from 1 (0 / None: the whole input).
    ``row`` is the row's number in the source (as a spreadsheet shows it), also once blank
    rows are left out of the table."""

    row: int
    column: int | None
    message: str


@dataclass(slots=True)
class Table:
    """Rows of text cells, all rows the same width, plus what looked wrong while reading them.

    ``source_rows`` holds each row's number in its source, counting from 1 as a spreadsheet
    does (a header row is row 1), when rows were left out (blank rows, a sheet's empty rows);
    empty means the rows are the source's rows 1, 2, 3 ... (``row_numbers()`` gives them)."""

    rows: list[list[str]]
    problems: list[ParseProblem] = field(default_factory=list)
    source: str = ""  # "html", "text", "csv", "xlsx": what the rows were read from
    encoding: str = ""  # the text encoding that was detected, for text files
    source_rows: list[int] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    def row_numbers(self) -> list[int]:
        """Each row's number in its source (see ``source_rows``), one per row."""
        if self.source_rows:
            if len(self.source_rows) != len(self.rows):
                raise ValueError("a table needs one source row number per row")
            return list(self.source_rows)
        return list(range(1, len(self.rows) + 1))

    def without_blank_rows(self) -> Table:
        """The same table without rows whose cells are all empty or blank; the rows kept keep
        their numbers in the source (``source_rows``), and so do the problems."""
        numbers = self.row_numbers()
        kept: list[list[str]] = []
        kept_numbers: list[int] = []
        for number, row in zip(numbers, self.rows, strict=True):
            if any(row) and "".join(row).strip():
                kept.append(row)
                kept_numbers.append(number)
        if len(kept) == len(self.rows):
            return Table(kept, self.problems, self.source, self.encoding, self.source_rows)
        left = set(kept_numbers)
        problems = [p for p in self.problems if not p.row or p.row in left]
        return Table(kept, problems, self.source, self.encoding, kept_numbers)
