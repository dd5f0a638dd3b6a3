"""The batch grid's models and undo commands, over plain rows checked by the real validator."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from noojee_desk.core.leads.layouts import FieldLayout, field_spec
from noojee_desk.core.leads.mapping import ColumnMapping, apply_mapping
from noojee_desk.core.leads.paste import GridState
from noojee_desk.core.leads.validate import ERROR, WARNING, Validator
from noojee_desk.ui.grid.marks import FixRole, SeverityRole
from noojee_desk.ui.grid.model import BatchModel
from noojee_desk.ui.grid.problems import ProblemListModel
from noojee_desk.ui.grid.undo import (
    AddRowsCommand,
    MappingCommand,
    RemoveRowsCommand,
    ResetCommand,
    SetCellsCommand,
)
from noojee_desk.ui.grid.view import RowHeader
from noojee_desk.ui.theme import TINTS

LAYOUT = FieldLayout(
    (
        field_spec("Name", required=True),
        field_spec("City"),
        field_spec("FirstPhone", phone=True),
        field_spec("SecondPhone", phone=True),
    )
)
TITLES = ["Name", "City", "Mobile"]
MAPPING: list[str | None] = ["Name", "City", "FirstPhone"]
CELLS = [
    ["Ann Lee", "Carlton", "0412 345 678"],  # 1: fine
    ["Bob Ray", "Fitzroy", "412345679"],  # 2: lost its leading 0 (warning with a fix)
    ["", "Kew", "4.12E+08"],  # 3: no name (error) and scientific notation (error)
    ["Cat Poe", "Brunswick", "0412 345 678"],  # 4: same number as row 1 (warning)
    ["Dan Wu", "Richmond", ""],  # 5: no phone (error)
]


def check_all(model: BatchModel, validator: Validator) -> None:
    rows = model.all_rows()
    leads = apply_mapping([r.cells for r in rows], ColumnMapping(tuple(model.mapping)))
    checks = validator.validate_rows(leads)
    model.set_checks(
        [(r.id, r.version, c) for r, c in zip(rows, checks, strict=True)], refilter=False
    )


@pytest.fixture
def validator() -> Validator:
    return Validator(LAYOUT)


@pytest.fixture
def model(validator: Validator) -> BatchModel:
    model = BatchModel()
    model.load(GridState(TITLES, list(TITLES), list(MAPPING), []))
    model.append_rows(model.new_rows(CELLS, "test"))
    check_all(model, validator)
    return model


def cell(model: BatchModel, row: int, column: int, role: int = Qt.ItemDataRole.DisplayRole):
    return model.index(row, column).data(role)


def test_model_tester_with_checks_filter_and_changes(
    model: BatchModel, validator: Validator, qtmodeltester: ModelTester
) -> None:
    qtmodeltester.check(model)  # keeps checking every change below
    assert model.rowCount() == 5
    assert model.columnCount() == 3
    model.set_filter(True)
    assert model.rowCount() == 4  # rows 2..5 have problems
    assert model.headerData(0, Qt.Orientation.Vertical) == "2"  # numbers stay the grid's
    model.set_filter(False)
    stack = QUndoStack()
    stack.push(RemoveRowsCommand(model, [model.row_at(1).id, model.row_at(3).id], "remove"))
    stack.undo()
    assert [r.cells[0] for r in model.all_rows()] == [c[0] for c in CELLS]
    check_all(model, validator)
    stack.push(ResetCommand(model, GridState(), "clear"))
    stack.undo()
    model.set_filter(True)
    model.remove_rows([model.row_at(0).id])
    model.append_rows(model.new_rows([["Eve", "Kew", ""]], "t"))
    model.set_filter(False)
    assert model.rowCount() == 5


def test_cells_show_their_problems(model: BatchModel) -> None:
    assert cell(model, 0, 2, SeverityRole) is None
    assert cell(model, 0, 2, Qt.ItemDataRole.BackgroundRole) is None
    # The lost leading 0: amber, with the fix in the tooltip and the FixRole.
    assert cell(model, 1, 2, SeverityRole) == WARNING
    assert cell(model, 1, 2, Qt.ItemDataRole.BackgroundRole).color().name() == TINTS[WARNING][0]
    assert "leading 0" in cell(model, 1, 2, Qt.ItemDataRole.ToolTipRole)
    fix = cell(model, 1, 2, FixRole)
    assert fix is not None
    assert fix.value == "0412345679"
    # Row 3: the empty name and the scientific notation are errors, in their own cells.
    assert cell(model, 2, 0, SeverityRole) == ERROR
    assert cell(model, 2, 2, SeverityRole) == ERROR
    assert cell(model, 2, 1, SeverityRole) is None
    assert "scientific" in cell(model, 2, 2, Qt.ItemDataRole.ToolTipRole)
    # Row 4 repeats row 1's number: a warning that names row 1.
    assert "row 1" in cell(model, 3, 2, Qt.ItemDataRole.ToolTipRole)
    # The row header carries the worst severity and every message.
    assert model.headerData(2, Qt.Orientation.Vertical, SeverityRole) == ERROR
    assert model.headerData(1, Qt.Orientation.Vertical, SeverityRole) == WARNING
    # Its tooltip says where the row came from first.
    assert model.headerData(0, Qt.Orientation.Vertical, Qt.ItemDataRole.ToolTipRole) == (
        "Row 1 of test\n\nReady to queue"
    )
    assert model.summary() == (1, 2, 2, 0)


def test_dark_palette_uses_dark_tints(model: BatchModel) -> None:
    model.set_dark(True)
    assert cell(model, 2, 2, Qt.ItemDataRole.BackgroundRole).color().name() == TINTS[ERROR][1]


def test_unmapped_field_problems_belong_to_the_row(model: BatchModel, validator: Validator) -> None:
    stack = QUndoStack()
    stack.push(MappingCommand(model, ["Name", "City", None], "unmap the phone"))
    check_all(model, validator)
    assert all(cell(model, r, 2, SeverityRole) is None for r in range(5))
    assert model.index(2, 2).data(Qt.ItemDataRole.ForegroundRole) is not None  # greyed
    row = model.row_at(0)
    assert [p.field for p in model.row_problems(row)] == ["FirstPhone"]  # no phone
    stack.undo()
    assert model.mapping == MAPPING


def test_two_columns_into_one_field_mark_both(validator: Validator) -> None:
    model = BatchModel()
    model.load(GridState(["First", "Last", "Phone"], None, ["Name", "Name", "FirstPhone"], []))
    model.append_rows(model.new_rows([["Ann", "x" * 300, "0412345678"]], "t"))
    check_all(model, validator)
    assert model.columns_of("Name") == [0, 1]
    assert cell(model, 0, 0, SeverityRole) == ERROR  # too long once joined
    assert cell(model, 0, 1, SeverityRole) == ERROR


def test_edit_undo_redo_and_stale_checks(model: BatchModel, validator: Validator) -> None:
    stack = QUndoStack()
    edited: list[list[int]] = []
    model.cells_edited.connect(edited.append)
    row = model.row_at(1)
    version = row.version
    stack.push(SetCellsCommand(model, [(row.id, 2, row.cells[2], "0412345679")], "fix"))
    assert cell(model, 1, 2) == "0412345679"
    assert row.version == version + 1
    assert edited == [[row.id]]
    # A check of the old cells arriving now is ignored.
    old_check = row.check
    model.set_checks([(row.id, version, old_check)], refilter=False)
    assert not row.current
    check_all(model, validator)
    assert row.current
    assert cell(model, 1, 2, SeverityRole) is None
    stack.undo()
    assert cell(model, 1, 2) == "412345679"
    stack.redo()
    assert cell(model, 1, 2) == "0412345679"


def test_add_rows_and_reset_undo(model: BatchModel) -> None:
    stack = QUndoStack()
    extra = model.new_rows([["Eve", "Kew", "0398765432"]], "test", 6)
    stack.push(AddRowsCommand(model, extra, "add"))
    assert model.rowCount() == 6
    stack.undo()
    assert model.rowCount() == 5
    stack.redo()
    assert model.row_at(5).cells[0] == "Eve"
    stack.push(ResetCommand(model, GridState(), "clear"))
    assert model.rowCount() == 0
    assert model.columnCount() == 0
    stack.undo()
    assert model.rowCount() == 6
    assert model.titles == TITLES


def test_queued_rows_never_come_back(model: BatchModel) -> None:
    """Undo after a queue must not put queued rows back: they would be sent twice."""
    stack = QUndoStack()
    extra = model.new_rows([["Eve", "Kew", "0398765432"], ["Fay", "Kew", "0398765433"]], "t")
    stack.push(AddRowsCommand(model, extra, "add"))
    stack.push(ResetCommand(model, GridState(), "clear"))
    stack.undo()  # all 7 rows back
    queued = [model.row_at(0).id, extra[0].id]
    model.remove_rows(queued, gone=True)
    assert model.rowCount() == 5
    stack.redo()  # clear again
    stack.undo()  # back: without the queued ones
    assert model.rowCount() == 5
    stack.undo()  # take the two added rows out
    stack.redo()  # and add them again: only Fay may come back
    names = [r.cells[0] for r in model.all_rows()]
    assert "Fay" in names
    assert "Eve" not in names
    assert "Ann Lee" not in names
    # Edits of a queued row are ignored.
    assert model.set_cells([(queued[0], 0, "x")]) == []


def test_queueing_rows_are_read_only(model: BatchModel) -> None:
    row = model.row_at(0)
    model.set_queueing([row.id], True)
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable
    assert not model.setData(model.index(0, 0), "changed")
    assert model.summary() == (0, 2, 2, 0)
    model.set_queueing([row.id], False)
    assert model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable


def test_set_data_goes_through_the_edit_handler(model: BatchModel) -> None:
    pushed: list[tuple[list[tuple[int, int, str, str]], str]] = []
    model.edit_handler = lambda changes, text: pushed.append((changes, text))
    row = model.row_at(0)
    assert model.setData(model.index(0, 1), "Parkville")
    assert pushed == [([(row.id, 1, "Carlton", "Parkville")], "Edit cell")]
    assert cell(model, 0, 1) == "Carlton"  # the handler (an undo command) applies it
    assert not model.setData(model.index(0, 1), "Carlton")  # unchanged: nothing to do


def test_many_removed_ranges_reset_instead(model: BatchModel, validator: Validator) -> None:
    rows = model.new_rows([[f"P{i}", "Kew", f"03{i:08d}"] for i in range(200)], "t")
    model.append_rows(rows)
    every_other = [r.id for r in rows[::2]]
    placed = model.remove_rows(every_other)
    assert model.rowCount() == 105
    model.insert_rows(placed)
    assert [r.cells[0] for r in model.all_rows()[5:8]] == ["P0", "P1", "P2"]


def test_problem_list(model: BatchModel, validator: Validator, qtmodeltester: ModelTester) -> None:
    problems = ProblemListModel(model)
    problems.rebuild()
    qtmodeltester.check(problems)
    texts = [problems.index(i).data() for i in range(problems.rowCount())]
    assert texts[0].startswith("Row 2 · Mobile: ")
    assert any(t.startswith("Row 3 · Name: ") for t in texts)
    assert problems.counts() == (3, 2)
    assert problems.index(0).data(FixRole).label == "Add the leading 0"
    # One row changes: its entries are replaced in place, the order is kept.
    row = model.row_at(1)
    problems.replace_row(row.id, [])
    assert problems.rowCount() == len(texts) - 1
    problems.replace_row(row.id, list(model.row_at(1).check.problems))
    assert [problems.index(i).data() for i in range(problems.rowCount())] == texts
    row5 = model.row_at(4)
    problems.drop_rows([row5.id])
    assert all(not problems.index(i).data().startswith("Row 5") for i in range(len(texts) - 1))
    assert problems.index(0).parent() == QModelIndex()


def test_row_numbers_are_the_source_rows_and_the_header_fits_them(qtbot: QtBot) -> None:
    model = BatchModel()
    rows = model.new_rows([[f"Person {i}", "0412 345 678"] for i in range(1, 1001)], "a.csv", 2)
    model.load(GridState(["Name", "Phone"], ["Name", "Phone"], ["Name", "FirstPhone"], rows))
    view = QTableView()
    qtbot.addWidget(view)
    header = RowHeader(view)
    view.setVerticalHeader(header)
    view.setModel(model)
    narrow = header.sizeHint().width()
    model.remove_rows([r.id for r in rows[:-3]], gone=True)
    # The three rows left are rows 999 to 1001 of the file, and the numbers still fit.
    assert [model.headerData(r, Qt.Orientation.Vertical) for r in range(3)] == [
        "999",
        "1000",
        "1001",
    ]
    assert header.sizeHint().width() == narrow
    assert header.sizeHint().width() >= header.fontMetrics().horizontalAdvance("1001") + 12
