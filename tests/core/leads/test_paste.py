"""Pasting many leads without Qt: reading a big clipboard, preparing rows, checking them, and the
rules for the mapping and the header."""

from __future__ import annotations

import pytest

from noojee_desk.core.leads import paste
from noojee_desk.core.leads.layouts import FieldLayout, field_spec
from noojee_desk.core.leads.paste import (
    GridRow,
    GridState,
    RowKind,
    build_rows,
    check_rows,
    grid_leads,
    has_data,
    header_as_row,
    header_read,
    html_later,
    is_lead_file,
    load_note,
    prepare_table,
    remap,
    row_kind,
)
from noojee_desk.core.leads.table import ParseProblem, Table
from noojee_desk.core.leads.validate import ERROR, Validator

LAYOUT = FieldLayout(
    (
        field_spec("Name", required=True),
        field_spec("City"),
        field_spec("FirstPhone", phone=True),
        field_spec("SecondPhone", phone=True),
    )
)
HEADER = ["Name", "Suburb", "Mobile"]


def table(*rows: list[str]) -> Table:
    return Table([list(r) for r in rows])


def test_big_pastes_read_the_text_unless_digits_were_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The HTML flavour is 6 to 30 times slower to read; it only helps with lost digits."""
    monkeypatch.setattr(paste, "BIG_HTML", 100)
    rows = [["Name", "Mobile"], ["Ann", "4.12E+08"], ["Bob", "0412 345 679"]]
    text = "".join("\t".join(r) + "\r\n" for r in rows)

    def html(exact: bool) -> str:
        value = ' x:num="412345678"' if exact else ""
        return (
            "<table><tr><td>Name</td><td>Mobile</td></tr>"
            f"<tr><td>Ann</td><td{value}>4.12E+08</td></tr>"
            "<tr><td>Bob</td><td>0412 345 679</td></tr></table>" + " " * 200
        )

    with_values = paste.read_clipboard({"text/plain": text, "text/html": html(True)})
    assert with_values.rows[1] == ["Ann", "412345678"]  # the HTML's exact value
    without = paste.read_clipboard({"text/plain": text, "text/html": html(False)})
    assert without.rows[1] == ["Ann", "4.12E+08"]
    assert without.source != "html"
    assert paste.lost_digits(without)
    clean = paste.read_clipboard(
        {"text/plain": text.replace("4.12E+08", "0412345678"), "text/html": html(True)}
    )
    assert clean.rows[1] == ["Ann", "0412345678"]
    assert clean.source != "html"


def test_prepare_table_finds_the_header_and_leaves_blank_rows_out() -> None:
    source = table(
        HEADER,
        ["Ann Lee", "Carlton", "0412 345 678"],
        ["", " ", ""],
        ["Bob Ray", "Kew", "0412 345 679"],
    )
    prepared = prepare_table(source, LAYOUT, {}, first_id=10, source="Pasted")
    assert prepared.header == HEADER
    assert prepared.titles == HEADER
    assert prepared.mapping == ["Name", "City", "FirstPhone"]
    assert prepared.blank == 1
    assert [r.id for r in prepared.rows] == [10, 11]
    # Rows as the spreadsheet numbers them: the header is row 1.
    assert [r.source_row for r in prepared.rows] == [2, 4]
    assert prepared.rows[1].cells == ["Bob Ray", "Kew", "0412 345 679"]
    assert all(r.source == "Pasted" for r in prepared.rows)


def test_prepare_table_without_a_header_names_the_columns() -> None:
    source = table(["Ann Lee", "0412 345 678"], ["Bob Ray", "0412 345 679"])
    prepared = prepare_table(source, LAYOUT, {}, first_id=1, source="x.csv")
    assert prepared.header is None
    assert prepared.titles == ["Column 1", "Column 2"]
    assert len(prepared.rows) == 2
    assert prepared.mapping[1] in ("FirstPhone", "SecondPhone")  # found by the numbers in it


def test_prepare_table_uses_a_saved_mapping() -> None:
    from noojee_desk.core.leads.mapping import header_signature

    saved = {header_signature(HEADER): ["Name", None, "SecondPhone"]}
    source = table(HEADER, ["Ann Lee", "Carlton", "0412 345 678"])
    prepared = prepare_table(source, LAYOUT, saved, first_id=1, source="Pasted")
    assert prepared.mapping == ["Name", None, "SecondPhone"]


def test_check_rows_returns_versions_checks_and_problems() -> None:
    rows = build_rows(
        [["Ann Lee", "Carlton", "0412 345 678"], ["", "Kew", "4.12E+08"]], first_id=5, source=""
    )
    rows[1].version = 3
    result = check_rows(Validator(LAYOUT), ["Name", "City", "FirstPhone"], rows)
    assert [(rid, version) for rid, version, _ in result.checks] == [(5, 0), (6, 3)]
    assert result.checks[0][2].ok
    assert result.checks[0][2].fields["FirstPhone"] == "0412345678"
    assert not result.checks[1][2].ok
    assert {e.row_id for e in result.entries} == {6}
    assert {e.problem.field for e in result.entries} >= {"Name", "FirstPhone"}
    assert all(e.problem.severity == ERROR for e in result.entries)
    assert check_rows(Validator(LAYOUT), ["Name"], []).checks == []


def test_rows_count_by_kind_and_leave_as_leads() -> None:
    rows = build_rows(
        [
            ["Ann Lee", "0412 345 678"],
            ["Bob Ray", "412 345 679"],
            ["", "1"],
            ["Cy", "0412 000 111"],
        ],
        first_id=1,
        source="",
    )
    result = check_rows(Validator(LAYOUT), ["Name", "FirstPhone"], rows[:3])
    for row, (_rid, version, check) in zip(rows, result.checks, strict=False):
        row.check, row.checked_version = check, version
    rows[3].queueing = True
    assert [row_kind(r) for r in rows] == [
        RowKind.CLEAN,
        RowKind.WARNED,  # the lost leading 0: a warning, sent as fixed
        RowKind.BLOCKED,
        RowKind.QUEUEING,
    ]
    assert row_kind(GridRow(9, ["x"], 1)) is RowKind.UNCHECKED
    assert rows[0].current
    assert rows[0].severity is None
    rows[0].version += 1  # edited since: the check is stale
    assert not rows[0].current
    leads = grid_leads(rows[:2])
    assert [lead.row_id for lead in leads] == [1, 2]
    assert leads[0].fields == {"Name": "Ann Lee", "FirstPhone": "0412345678"}
    assert leads[0].phones == frozenset({"+61412345678"})
    assert leads[1].row == 2


def test_remap_takes_a_phone_off_its_other_column_but_joins_text_fields() -> None:
    mapping = ["Name", "FirstPhone", None]
    assert remap(mapping, 2, "FirstPhone", LAYOUT) == ["Name", None, "FirstPhone"]
    assert remap(mapping, 2, "Name", LAYOUT) == ["Name", "FirstPhone", "Name"]  # joined
    assert remap(mapping, 0, "Name", LAYOUT) is None  # nothing changes
    assert remap(mapping, 7, "City", LAYOUT) is None  # no such column
    assert remap(mapping, 1, None, LAYOUT) == ["Name", None, None]
    assert mapping == ["Name", "FirstPhone", None]  # the old mapping is left as it was


def test_the_header_switch_both_ways() -> None:
    rows = build_rows([HEADER, ["Ann Lee", "Carlton", "0412 345 678"]], first_id=1, source="")
    state = GridState(["Column 1", "Column 2", "Column 3"], None, [None, None, None], rows)
    read = header_read(state, LAYOUT, {})
    assert read.header == HEADER
    assert read.titles == HEADER
    assert read.mapping == ["Name", "City", "FirstPhone"]
    assert read.rows == rows[1:]
    back = header_as_row(read, GridRow(99, list(HEADER), 0))
    assert back.header is None
    assert back.titles == ["Column 1", "Column 2", "Column 3"]
    assert back.mapping == read.mapping
    assert [r.id for r in back.rows] == [99, rows[1].id]


def test_load_note_says_what_happened() -> None:
    source = Table([["a"]], problems=[ParseProblem(3, 1, "an unclosed quote")])
    prepared = prepare_table(table(HEADER, ["Ann", "Kew", "0412 345 678"]), LAYOUT, {}, 1, "")
    prepared.blank = 2
    note = load_note(source, prepared, append=False, replaced=7, source="Pasted 1 Jan 10:00")
    assert note == (
        "Pasted 1 rows; first row read as the header; 2 empty rows left out; "
        "1 reading problems (first: an unclosed quote); "
        "replaced the 7 rows that were here (Undo brings them back)"
    )
    assert load_note(source, prepared, append=True, replaced=7, source="x").startswith("Added 1")
    assert load_note(table(), prepared, append=False, replaced=0, source="x.csv") == (
        "Opened 1 rows; first row read as the header; 2 empty rows left out"
    )


def test_big_paste_policy_and_lead_files(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not html_later(paste.BIG_TEXT)
    assert html_later(paste.BIG_TEXT + 1)
    monkeypatch.setattr(paste, "BIG_TEXT", 10)
    assert html_later(11)
    assert not has_data(table(["", " "], ["\t"]))
    assert has_data(table(["", "x"]))
    assert is_lead_file("/tmp/Leads.XLSX")
    assert is_lead_file("leads.tsv")
    assert not is_lead_file("photo.png")
