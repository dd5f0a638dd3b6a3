"""A table of text cells read from a paste or a file, with what looked wrong while reading it."""

from __future__ import annotations

from dataclasses import dataclass, field


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
