"""Every reader keeps each row's number in its source, also below blank rows it leaves out, and
the grid's rows carry those numbers: the first row below a header is row 2, as a spreadsheet
shows it."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from noojee_desk.core.leads.clipboard import parse_clipboard
from noojee_desk.core.leads.html_tables import parse_html
from noojee_desk.core.leads.layouts import FieldLayout, field_spec
from noojee_desk.core.leads.paste import prepare_table
from noojee_desk.core.leads.spreadsheets import read_file
from noojee_desk.core.leads.table import ParseProblem, Table
from noojee_desk.core.leads.validate import ValidationSettings, Validator, number_rows

LAYOUT = FieldLayout(
    (field_spec("Name", required=True), field_spec("City"), field_spec("FirstPhone", phone=True))
)
# Source rows: 1 the header, 2 Ann, 3 blank, 4 Bob, 5 and 6 blank (6 only spaces), 7 Cy.
LINES = [
    ["Name", "City", "FirstPhone"],
    ["Ann Lee", "Melbourne", "0412000001"],
    ["", "", ""],
    ["Bob Ray", "Sydney", "0412000002"],
    ["", "", ""],
    ["  ", " ", ""],
    ["Cy Poe", "Perth", "0412000003"],
]
KEPT = [1, 2, 4, 7]


def _grid_numbers(table: Table) -> list[int]:
    prepared = prepare_table(table, LAYOUT, {}, first_id=1, source="x")
    assert prepared.header == ["Name", "City", "FirstPhone"]
    assert [row.cells[0] for row in prepared.rows] == ["Ann Lee", "Bob Ray", "Cy Poe"]
    return [row.source_row for row in prepared.rows]


def _html(rows: list[list[str]]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<html><body><table>{body}</table></body></html>"


def test_a_pasted_text_keeps_its_line_numbers_below_blank_lines() -> None:
    text = "\r\n".join("\t".join(row) for row in LINES) + "\r\n"
    table = parse_clipboard({"text/plain": text})
    assert table.row_numbers() == KEPT
    assert _grid_numbers(table) == [2, 4, 7]


@pytest.mark.parametrize("quick", [True, False], ids=["plain-cells", "html-parser-reads-it"])
def test_a_pasted_html_table_keeps_its_row_numbers_below_blank_rows(quick: bool) -> None:
    markup = _html(LINES)
    if not quick:  # a cell left open: the quick reader stands aside for html.parser
        markup = markup.replace("<td>Perth</td>", "<td>Perth")
    table = parse_clipboard({"text/html": markup})
    assert table.source == "html"
    assert table.row_numbers() == KEPT
    assert _grid_numbers(table) == [2, 4, 7]
    assert parse_html(markup).without_blank_rows().row_numbers() == KEPT


def test_a_csv_file_keeps_its_line_numbers_below_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("\n".join(",".join(row) for row in LINES) + "\n", encoding="utf-8")
    table = read_file(path)
    assert table.row_numbers() == KEPT
    assert _grid_numbers(table) == [2, 4, 7]


def test_a_quoted_cell_over_two_lines_is_one_row_as_a_spreadsheet_shows_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(
        'Name,City,FirstPhone\n"Ann\nLee",Melbourne,0412000001\n\nBob Ray,Sydney,0412000002\n',
        encoding="utf-8",
    )
    table = read_file(path)
    assert table.row_numbers() == [1, 2, 4]
    assert [row.source_row for row in prepare_table(table, LAYOUT, {}, 1, "x").rows] == [2, 4]


def test_an_xlsx_sheet_keeps_its_row_numbers_below_empty_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for number, row in enumerate(LINES, start=1):
        for column, value in enumerate(row, start=1):
            if value:
                sheet.cell(number, column, value)
    sheet.cell(9, 1, "")  # a cell that exists but holds nothing, below the last lead
    path = tmp_path / "leads.xlsx"
    workbook.save(path)
    table = read_file(path)
    assert table.row_numbers() == KEPT
    assert _grid_numbers(table) == [2, 4, 7]


def test_a_sheet_whose_leads_start_lower_down_is_numbered_as_the_sheet_shows_it(
    tmp_path: Path,
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for number, row in enumerate(LINES, start=3):  # two empty rows above the header
        for column, value in enumerate(row, start=1):
            if value:
                sheet.cell(number, column, value)
    path = tmp_path / "leads.xlsx"
    workbook.save(path)
    table = read_file(path)
    assert table.row_numbers() == [n + 2 for n in KEPT]
    assert _grid_numbers(table) == [4, 6, 9]


def test_problems_keep_their_source_rows_and_rows_without_numbers_count_from_one() -> None:
    table = Table(
        [["a"], [""], ["b"], [" "], ["c"]],
        [ParseProblem(0, None, "all"), ParseProblem(2, 1, "blank"), ParseProblem(5, 1, "c")],
    )
    assert table.row_numbers() == [1, 2, 3, 4, 5]
    kept = table.without_blank_rows()
    assert kept.rows == [["a"], ["b"], ["c"]]
    assert kept.row_numbers() == [1, 3, 5]
    assert [(p.row, p.message) for p in kept.problems] == [(0, "all"), (5, "c")]
    # Dropping blank rows again keeps the numbers it has.
    assert kept.without_blank_rows().row_numbers() == [1, 3, 5]
    with pytest.raises(ValueError, match="one source row number per row"):
        Table([["a"]], source_rows=[1, 2]).row_numbers()


def test_checks_renumbered_to_source_rows_name_other_rows_by_them_too() -> None:
    validator = Validator(LAYOUT, ValidationSettings())
    rows = [
        {"Name": "Ann", "FirstPhone": "0412000001"},
        {"Name": "", "FirstPhone": "0412000002"},
        {"Name": "Cy", "FirstPhone": "0412 000 001"},
    ]
    checks = validator.validate_rows(rows, first_row=1)
    number_rows(checks, [2, 4, 7])
    assert [c.row for c in checks] == [2, 4, 7]
    assert {p.row for p in checks[1].problems} == {4}
    duplicate = [p for p in checks[2].problems if "also in row" in p.message]
    assert duplicate
    assert "also in row 2 " in duplicate[0].message
    assert all(p.row == 7 for p in checks[2].problems)
    with pytest.raises(ValueError, match="one number per check"):
        number_rows(checks, [1])
