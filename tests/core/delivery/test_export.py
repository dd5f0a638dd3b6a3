"""Results export: CSV and XLSX straight from the per-lead state."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import openpyxl
import pytest

from noojee_desk.core.delivery import export
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import (
    Attempt,
    LeadInput,
    LeadQuery,
    State,
    Target,
    Transition,
)

TARGET = Target(3, 42, 101)


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    box = Outbox(tmp_path / "outbox.sqlite3")
    box.enqueue(
        "p",
        TARGET,
        [
            LeadInput({"Name": "Ann", "FirstPhone": "0412000001"}, row=1),
            LeadInput({"Name": '=HYPERLINK("x")', "FirstPhone": "+61412000002"}, row=2),
            LeadInput({"Name": "Cy", "FirstPhone": "0299999999", "Status": "VIP"}, row=3),
            LeadInput({"Name": "Di", "FirstPhone": "0412000004", "njExternalLeadId": "CRM-4"}),
        ],
        allow_duplicates=False,
        source="paste",
    )
    one, two, three = box.claim_due("p", 3)
    box.record(
        Attempt(one.id, 1e9, 1e9 + 0.1, "delivered", 0, "OK", 0.1),
        Transition(State.DELIVERED, code=0, message="OK", sentence="Added."),
    )
    box.record(
        Attempt(two.id, 1e9, 1e9 + 0.1, "retry_later", 103, "EXCEPTION", 0.1),
        Transition(State.QUEUED, next_attempt_at=2e9, code=103, message="EXCEPTION"),
    )
    box.record(
        Attempt(three.id, 1e9, 1e9 + 0.1, "rejected", 104, "DNC apiKey=hush", 0.1),
        Transition(
            State.REJECTED,
            code=104,
            message="DNC https://pbx/x?apiKey=hush",
            sentence="On the Do Not Call list.",
            fix="Remove the lead.",
        ),
    )
    yield box
    box.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads UTF-8
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_csv_has_the_fields_then_the_results(outbox: Outbox, tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.csv"
    assert export.write_csv(outbox, path) == 4
    table = read_csv(path)
    assert list(table[0]) == [
        "Name",
        "FirstPhone",
        "Status",
        "njExternalLeadId",
        "Status (result)",
        "Code",
        "Server message",
        "Reason",
        "Fix",
        "Attempts",
        "First attempt",
        "Last attempt",
        "Row",
        "Batch",
    ]
    ann, formula, cy, di = table
    assert ann["Status (result)"] == "delivered"
    assert ann["Code"] == "0"
    assert ann["Attempts"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", ann["First attempt"])
    assert ann["njExternalLeadId"].startswith("nd-")
    assert formula["Name"] == '\'=HYPERLINK("x")'  # not a live formula in a spreadsheet
    assert formula["FirstPhone"] == "+61412000002"  # a number stays a number
    assert formula["Status (result)"] == "queued"
    assert formula["Code"] == "103"
    assert cy["Status"] == "VIP"
    assert cy["Status (result)"] == "rejected"
    assert cy["Reason"] == "On the Do Not Call list."
    assert cy["Fix"] == "Remove the lead."
    assert "hush" not in path.read_text(encoding="utf-8-sig")
    assert di["njExternalLeadId"] == "CRM-4"
    assert di["Attempts"] == "0"
    assert di["First attempt"] == ""
    assert di["Row"] == ""


def test_csv_of_a_selection_to_a_stream(outbox: Outbox) -> None:
    stream = io.StringIO()
    query = LeadQuery(states=frozenset({State.REJECTED}))
    assert export.write_csv(outbox, stream, query) == 1
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "rejected" in lines[1]


def test_xlsx_keeps_every_cell_as_text(outbox: Outbox, tmp_path: Path) -> None:
    path = tmp_path / "results.xlsx"
    assert export.write_xlsx(outbox, path) == 4
    sheet = openpyxl.load_workbook(path).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:4] == ["Name", "FirstPhone", "Status", "njExternalLeadId"]
    assert values[2][0] == '=HYPERLINK("x")'
    assert sheet.cell(3, 1).data_type == "s"
    assert values[1][1] == "0412000001"
    assert values[3][4] == "rejected"
    assert sheet.freeze_panes == "A2"


def test_a_failed_export_leaves_no_half_file(
    outbox: Outbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.csv"
    path.write_text("the previous export")
    real_row = export._row
    written: list[int] = []

    def failing_row(lead, fields):  # type: ignore[no-untyped-def]
        if written:
            raise OSError("disk full")
        written.append(lead.id)
        return real_row(lead, fields)

    monkeypatch.setattr(export, "_row", failing_row)
    with pytest.raises(OSError, match="disk full"):
        export.write_csv(outbox, path)
    assert written
    assert path.read_text() == "the previous export"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".results")] == []


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x")', "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3"]
)
def test_csv_header_cells_are_neutralised_like_data_cells(tmp_path: Path, name: str) -> None:
    box = Outbox(tmp_path / "outbox.sqlite3")
    try:
        box.enqueue(
            "p",
            TARGET,
            [LeadInput({name: "x", "FirstPhone": "0412000001"}, row=1)],
            allow_duplicates=False,
            source="paste",
        )
        path = tmp_path / "results.csv"
        export.write_csv(box, path)
    finally:
        box.close()
    header = next(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert header[0] == "'" + name
    assert header[1] == "FirstPhone"


def many(tmp_path: Path, count: int) -> Outbox:
    box = Outbox(tmp_path / "many.sqlite3")
    leads = [
        LeadInput({"Name": f"P{i}", "FirstPhone": f"04120{i:05d}"}, row=i + 1) for i in range(count)
    ]
    box.enqueue("p", TARGET, leads, allow_duplicates=False, source="file")
    box.enqueue("p", TARGET, [LeadInput({"Late": "x", "Name": "Q"})], allow_duplicates=False,
                source="form")  # fmt: skip
    return box


def test_export_reads_the_leads_once_and_tells_its_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = many(tmp_path, 5000)
    decoded = 0
    from noojee_desk.core.delivery import schema

    original = schema.lead_of

    def counting(row: object) -> object:
        nonlocal decoded
        decoded += 1
        return original(row)

    monkeypatch.setattr("noojee_desk.core.delivery.outbox.lead_of", counting)
    heard: list[tuple[int, int]] = []
    path = tmp_path / "out.csv"

    def progress(done: int, total: int) -> bool:
        heard.append((done, total))
        return True

    written = export.write_csv(box, path, LeadQuery(profile="p"), progress)
    assert written == 5001
    assert decoded == 5001  # one pass: the header's field names come from SQLite
    assert heard[0] == (0, 5001)
    assert heard[-1] == (5001, 5001)
    assert [d for d, _ in heard[1:-1]] == [2000, 4000]
    rows = read_csv(path)
    assert list(rows[0])[:3] == ["Name", "FirstPhone", "Late"]  # first appearance order
    assert rows[-1]["Late"] == "x"
    box.close()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_cancelled_export_leaves_the_old_file(tmp_path: Path, kind: str) -> None:
    box = many(tmp_path, 5000)
    path = tmp_path / f"out.{kind}"
    path.write_text("the old one")
    write = export.write_xlsx if kind == "xlsx" else export.write_csv

    def progress(done: int, total: int) -> bool:
        return done < 2000

    with pytest.raises(export.ExportCancelled):
        write(box, path, LeadQuery(profile="p"), progress)
    assert path.read_text() == "the old one"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    box.close()


def test_cancel_is_heard_while_the_workbook_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row is in the sheet, then Cancel comes while the zip is written: no file."""
    box = many(tmp_path, 3000)
    path = tmp_path / "out.xlsx"
    path.write_text("the old one")
    monkeypatch.setattr(export._Heeding, "EVERY", 4096)
    heard: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> bool:
        heard.append((done, total))
        return len([d for d, t in heard if d == t]) < 3  # cancelled during the save

    with pytest.raises(export.ExportCancelled):
        export.write_xlsx(box, path, LeadQuery(profile="p"), progress)
    assert heard.count((3001, 3001)) >= 2  # all rows were done when it was cancelled
    assert path.read_text() == "the old one"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    box.close()
