"""The batch grid on the qasync loop: real clipboard, files, drops, fixes, undo and queueing."""

from __future__ import annotations

import asyncio
import csv
import gc
import html
from collections.abc import Iterator, Sequence
from pathlib import Path

import openpyxl
import pytest
from helpers.desks import demo_emulator, make_desk
from helpers.waits import next_signal, until
from PySide6.QtCore import QMimeData, QModelIndex, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStyleOptionViewItem,
    QWidget,
)
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from noojee_desk.app import MainThreadCollector
from noojee_desk.core.bulk import paused_gc
from noojee_desk.core.leads import paste
from noojee_desk.core.leads.layouts import FieldLayout, field_spec
from noojee_desk.core.leads.mapping import header_signature
from noojee_desk.core.leads.paste import GridLead
from noojee_desk.core.leads.validate import ERROR, WARNING, Validator
from noojee_desk.ui.grid import BatchGrid
from noojee_desk.ui.grid.marks import SeverityRole
from noojee_desk.ui.grid.view import GridView
from noojee_desk.ui.tasks import Tasks
from noojee_desk.ui.theme import MARKS, TINTS

CTRL = Qt.KeyboardModifier.ControlModifier
ALT = Qt.KeyboardModifier.AltModifier
NO_MODS = Qt.KeyboardModifier.NoModifier

# Showing a top-level window on the offscreen platform logs this harmless warning.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

LAYOUT = FieldLayout(
    (
        field_spec("Name", required=True),
        field_spec("StreetAddress"),
        field_spec("City"),
        field_spec("PostCode"),
        field_spec("FirstPhone", phone=True),
        field_spec("SecondPhone", phone=True),
    )
)
HEADER = ["Name", "Address", "Suburb", "Postcode", "Mobile", "Alt", "Priority"]
# Columns: 0 Name, 1 Address, 2 Suburb, 3 Postcode, 4 Mobile, 5 Alt (not recognised), 6 Priority


def lead_rows(count: int = 500) -> list[list[str]]:
    """``count`` rows with a known mix of problems (row numbers are 1-based data rows)."""
    rows = []
    for i in range(1, count + 1):
        mobile = f"04{10_000_000 + i:08d}"
        alt = ""
        priority = ""
        name = f"Person {i}"
        if i % 50 == 2:
            mobile = mobile[1:]  # a spreadsheet dropped the leading 0: warning with a fix
        if i % 50 == 3:
            mobile = "4.12E+08"  # the digits are gone: error
        if i % 50 == 4:
            mobile, alt = "", f"03{90_000_000 + i:08d}"  # only in the unmapped column: error
        if i % 50 == 5:
            priority = "150"  # too high: error with a fix
        if i % 50 == 6:
            name = ""  # required: error
        rows.append([name, f"{i} Main St", "Carlton", "3053", mobile, alt, priority])
    return rows


def excel_clipboard(rows: Sequence[Sequence[str]]) -> QMimeData:
    """What Excel puts on the clipboard: an HTML table and tab-separated text."""
    mime = QMimeData()
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    mime.setHtml(f"<html><body><table>{body}</table></body></html>")
    mime.setText("".join("\t".join(row) + "\r\n" for row in rows))
    return mime


async def settled(grid: BatchGrid) -> None:
    """Wait until the grid has loaded and checked everything."""
    await until(
        lambda: not grid.checking and not grid.busy,
        grid.checked,
        grid.loaded,
        grid.status_changed,
    )


@pytest.fixture(autouse=True)
def _collect_on_this_thread() -> Iterator[None]:
    """Collect garbage (Qt objects of earlier tests and loops) here, on the GUI thread.

    Otherwise a collection may start in a worker thread of the executor and destroy Qt
    objects there ("QObject::~QObject: Timers cannot be stopped from another thread").
    """
    gc.collect()
    yield
    gc.collect()


@pytest.fixture
def grid(qtbot: QtBot) -> Iterator[BatchGrid]:
    errors: list[str] = []
    widget = BatchGrid(Tasks(on_error=errors.append))
    qtbot.addWidget(widget)
    widget.set_layout(LAYOUT, Validator(LAYOUT), {})
    widget.set_target_ready(True)
    widget.resize(1300, 700)
    widget.show()
    widget.task_errors = errors  # type: ignore[attr-defined]
    yield widget
    # The clipboard owns the QMimeData objects set here; Qt would destroy the last one after
    # Python has shut down.
    QApplication.clipboard().clear()


def column_values(grid: BatchGrid, column: int) -> list[str]:
    return [r.cell(column) for r in grid.model.all_rows()]


def select_cell(grid: BatchGrid, row: int, column: int) -> None:
    index = grid.model.index(row, column)
    grid.view.selectionModel().setCurrentIndex(
        index, grid.view.selectionModel().SelectionFlag.ClearAndSelect
    )


def position_of(grid: BatchGrid, column: int, value: str) -> int:
    return column_values(grid, column).index(value)


async def paste_with_keyboard(qtbot: QtBot, grid: BatchGrid, rows: Sequence[Sequence[str]]):
    QApplication.clipboard().setMimeData(excel_clipboard(rows))
    grid.view.setFocus()
    loaded = asyncio.ensure_future(next_signal(grid.loaded))
    qtbot.keyClick(grid.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    await loaded
    await settled(grid)


def click_fix(qtbot: QtBot, grid: BatchGrid, entry_row: int) -> None:
    """Click the fix button of one entry in the side list, as a person would."""
    view = grid.panel.list
    index = grid.problems.index(entry_row)
    view.scrollTo(index)
    option = QStyleOptionViewItem()
    option.rect = view.visualRect(index)
    option.fontMetrics = view.fontMetrics()
    button = grid.panel.delegate.button_rect(option, index)
    assert button is not None
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=button.center())


@pytest.mark.asyncio
async def test_paste_map_fix_undo_redo_and_queue(
    qtbot: QtBot, grid: BatchGrid, qtmodeltester: ModelTester
) -> None:
    rows = [HEADER, *lead_rows(500)]
    qtmodeltester.check(grid.model)
    shown = asyncio.ensure_future(next_signal(grid.rows_shown))
    await paste_with_keyboard(qtbot, grid, rows)
    assert shown.done()
    model = grid.model
    assert model.rowCount() == 500
    assert model.header == HEADER  # the first row was read as the header
    assert model.titles == HEADER
    assert model.mapping == ["Name", "StreetAddress", "City", "PostCode", "FirstPhone", None,
                             "njPriority"]  # fmt: skip
    assert len(grid.header.combos) == 7
    assert grid.header.combos[4].currentData() == "FirstPhone"
    assert grid.header.combos[5].currentData() is None
    assert grid.toolbar.header_box.isChecked()

    # Problems: cells coloured, messages in the tooltip and the side list, counts shown.
    lost_zero = position_of(grid, 4, "410000002")
    assert model.index(lost_zero, 4).data(SeverityRole) == WARNING
    assert "leading 0" in model.index(lost_zero, 4).data(Qt.ItemDataRole.ToolTipRole)
    scientific = position_of(grid, 4, "4.12E+08")
    assert model.index(scientific, 4).data(SeverityRole) == ERROR
    only_alt = position_of(grid, 5, "0390000004")
    assert model.index(only_alt, 4).data(SeverityRole) == ERROR  # no phone: the phone column
    assert model.headerData(only_alt, Qt.Orientation.Vertical, SeverityRole) == ERROR
    # 10 of each kind in 500 rows; lost zeros are warnings, the rest errors.
    assert grid.problems.counts() == (40, 10)
    assert model.summary() == (450, 10, 40, 0)
    assert grid.footer.queue_button.text() == "Queue 460 leads"
    assert "40 blocked" in grid.footer.counts.text()
    assert not grid.task_errors

    # Map a column: "Alt" holds second numbers.
    saved: list[tuple[str, list[str | None]]] = []
    grid.mapping_saved.connect(lambda key, mapping: saved.append((key, mapping)))
    combo = grid.header.combos[5]
    combo.setCurrentIndex(combo.findData("SecondPhone"))
    combo.activated.emit(combo.currentIndex())
    await settled(grid)
    assert model.mapping[5] == "SecondPhone"
    assert saved == [(header_signature(HEADER), model.mapping)]
    assert model.index(only_alt, 4).data(SeverityRole) is None
    assert model.summary() == (460, 10, 30, 0)

    # Fix one cell by its suggestion, in the side list.
    entry = next(
        i
        for i, e in enumerate(grid.problems.entries())
        if e.problem.fix is not None and e.problem.fix.label == "Add the leading 0"
    )
    fixed_row = grid.problems.entry(entry).row_id
    fixed_at = model.position(fixed_row)
    before = model.index(fixed_at, 4).data()
    click_fix(qtbot, grid, entry)
    assert model.index(fixed_at, 4).data() == "0" + before
    assert model.index(fixed_at, 4).data(SeverityRole) is None  # checked again at once
    await settled(grid)
    assert model.summary() == (461, 9, 30, 0)

    # Undo and redo from the keyboard.
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert model.index(fixed_at, 4).data() == before
    assert model.index(fixed_at, 4).data(SeverityRole) == WARNING
    qtbot.keyClick(
        grid.view,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert model.index(fixed_at, 4).data() == "0" + before
    await settled(grid)

    # Queue: the summary first, then the valid rows leave with their normalised fields.
    requests: list[tuple[list[GridLead], str]] = []
    grid.queue_requested.connect(lambda leads, source, _again: requests.append((leads, source)))
    qtbot.mouseClick(grid.footer.queue_button, Qt.MouseButton.LeftButton)
    dialog = grid.summary_dialog
    assert dialog is not None
    assert dialog.text() == "Queue 470 leads?"
    assert "461 valid" in dialog.informativeText()
    assert "9 with warnings" in dialog.informativeText()
    assert "30 blocked by errors stay in the grid" in dialog.informativeText()
    confirm = dialog.findChild(type(grid.footer.queue_button), "confirmQueue")
    requested = asyncio.ensure_future(next_signal(grid.queue_requested))
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    leads, source, send_again = await requested
    assert not send_again
    assert len(leads) == 470
    assert source.startswith("Pasted")
    first = leads[0]
    assert first.fields["Name"] == "Person 1"
    assert first.fields["FirstPhone"] == "0410000001"
    assert first.phones == frozenset({"+61410000001"})
    assert first.row == 2  # its row in the paste: the header is row 1
    assert "Queueing 470 leads" in grid.footer.status.text()
    assert not grid.footer.queue_button.isEnabled()  # nothing is handed over twice
    grid.rows_queued([lead.row_id for lead in leads])
    assert model.rowCount() == 30  # the blocked rows stay to be fixed
    assert grid.problems.counts() == (30, 0)
    await settled(grid)
    assert model.summary() == (0, 0, 30, 0)
    # Undo cannot bring queued rows back.
    for _ in range(5):
        grid.undo_stack.undo()
    await settled(grid)
    assert all(r.id not in {lead.row_id for lead in leads} for r in model.all_rows())
    assert not grid.task_errors


@pytest.mark.asyncio
async def test_queue_failure_keeps_the_rows(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(20)])
    requested = asyncio.ensure_future(next_signal(grid.queue_requested))
    grid.request_queue()
    grid.summary_dialog.findChild(type(grid.footer.queue_button), "confirmQueue").click()
    leads, _source, _again = await requested
    assert all(grid.model.row_by_id(lead.row_id).queueing for lead in leads)
    grid.queue_failed("the disk is full")
    assert "the disk is full" in grid.footer.status.text()
    assert grid.model.total() == 20
    assert not any(r.queueing for r in grid.model.all_rows())
    assert grid.footer.queue_button.isEnabled()


@pytest.mark.asyncio
async def test_queue_needs_a_target(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(5)])
    assert grid.footer.queue_button.isEnabled()
    grid.set_target_ready(False)
    assert not grid.footer.queue_button.isEnabled()
    grid.request_queue()
    assert grid.summary_dialog is None
    assert "Choose a template" in grid.footer.status.text()


@pytest.mark.asyncio
async def test_paste_into_a_selection_like_a_spreadsheet(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    model = grid.model
    selection = grid.view.selectionModel()
    # A 2x2 block lands at the top-left selected cell.
    select_cell(grid, 1, 0)
    QApplication.clipboard().setMimeData(excel_clipboard([["Ann", "1 A St"], ["Bob", "2 B St"]]))
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    await until(lambda: model.index(2, 1).data() == "2 B St", model.dataChanged)
    assert [model.index(r, 0).data() for r in range(4)] == ["Person 1", "Ann", "Bob", "Person 4"]
    # One value fills every selected cell.
    selection.clearSelection()
    for r in range(3):
        selection.select(model.index(r, 2), selection.SelectionFlag.Select)
    QApplication.clipboard().setMimeData(excel_clipboard([["Kew"]]))
    await grid.paste_from_clipboard()
    assert [model.index(r, 2).data() for r in range(4)] == ["Kew", "Kew", "Kew", "Carlton"]
    # A block past the last row adds rows; one undo takes the whole paste back.
    select_cell(grid, 9, 0)
    QApplication.clipboard().setMimeData(
        excel_clipboard([["Cy", "", "", "", "0412000111"], ["Di", "", "", "", "0412000222"]])
    )
    await grid.paste_from_clipboard()
    assert model.rowCount() == 11
    assert model.index(10, 4).data() == "0412000222"
    await settled(grid)
    assert model.index(10, 0).data(SeverityRole) is None
    grid.undo_stack.undo()
    assert model.rowCount() == 10
    assert model.index(9, 0).data() == "Person 10"
    grid.undo_stack.undo()
    grid.undo_stack.undo()
    assert [model.index(r, 0).data() for r in range(3)] == ["Person 1", "Person 2", "Person 3"]
    assert model.index(0, 2).data() == "Carlton"


@pytest.mark.asyncio
async def test_edit_in_place_checks_the_row_again(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    model = grid.model
    index = model.index(2, 4)  # "4.12E+08"
    assert index.data(SeverityRole) == ERROR
    grid.view.setCurrentIndex(index)
    grid.view.edit(index)
    editor = grid.view.viewport().findChild(QLineEdit)
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, "0412 999 888")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the delegate commits on the next loop turn
    await until(lambda: index.data() == "0412 999 888", model.dataChanged)
    assert index.data(SeverityRole) is None
    assert model.headerData(2, Qt.Orientation.Vertical, SeverityRole) is None
    assert grid.undo_stack.undoText() == "Edit cell"
    # Delete clears the selected cells (and undo puts them back).
    select_cell(grid, 0, 0)
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_Delete)
    assert model.index(0, 0).data() == ""
    assert model.index(0, 0).data(SeverityRole) == ERROR  # Name is required
    grid.undo_stack.undo()
    assert model.index(0, 0).data() == "Person 1"


@pytest.mark.asyncio
async def test_problem_filter_and_navigation(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(100)])
    model = grid.model
    grid.toolbar.filter_box.setChecked(True)
    assert model.rowCount() == 10  # 2 of each kind of problem
    assert grid.toolbar.filter_box.text() == "Only rows with &problems (10)"
    # The rows keep their numbers in the paste (the header is row 1).
    assert model.headerData(0, Qt.Orientation.Vertical) == "3"
    # A click on a problem selects its cell.
    grid.panel.list.clicked.emit(grid.problems.index(1))
    current = grid.view.currentIndex()
    assert model.headerData(current.row(), Qt.Orientation.Vertical) == "4"
    assert current.column() == 4
    grid.toolbar.filter_box.setChecked(False)
    assert model.rowCount() == 100
    # The filter counts rows: a second problem in a row adds none.
    assert model.index(4, 6).data() == "150"  # too high a priority
    model.setData(model.index(4, 0), "")  # and now no name either
    await settled(grid)
    assert sum(grid.problems.counts()) == 11
    assert grid.toolbar.filter_box.text() == "Only rows with &problems (10)"


@pytest.mark.asyncio
async def test_apply_all_fixes_is_one_undo_step(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(100)])
    assert grid.panel.fix_all_button.text() == "Apply all 4 suggested fixes"
    qtbot.mouseClick(grid.panel.fix_all_button, Qt.MouseButton.LeftButton)
    await settled(grid)
    assert "410000002" not in column_values(grid, 4)
    assert "150" not in column_values(grid, 6)
    assert "100" in column_values(grid, 6)
    assert grid.problems.counts() == (6, 0)
    grid.undo_stack.undo()
    await settled(grid)
    assert grid.problems.counts() == (8, 2)


@pytest.mark.asyncio
async def test_saved_mapping_applies_by_itself(qtbot: QtBot, grid: BatchGrid) -> None:
    mapping = ["Name", None, "City", "PostCode", "SecondPhone", "FirstPhone", None]
    grid.set_layout(LAYOUT, Validator(LAYOUT), {header_signature(HEADER): mapping})
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    assert grid.model.mapping == mapping
    assert grid.header.combos[1].currentText() == "— not sent —"


@pytest.mark.asyncio
async def test_rows_without_header_and_the_header_switch(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, lead_rows(10))
    model = grid.model
    assert model.header is None
    assert model.titles[0] == "Column 1"
    assert model.rowCount() == 10
    assert model.mapping[4] in ("FirstPhone", "SecondPhone")  # found by the numbers in it
    assert not grid.toolbar.header_box.isChecked()
    grid.toolbar.header_box.setChecked(True)  # "the first row is a header" after all
    await settled(grid)
    assert model.rowCount() == 9
    assert model.titles[0] == "Person 1"
    grid.undo_stack.undo()
    await settled(grid)
    assert model.rowCount() == 10
    assert not grid.toolbar.header_box.isChecked()


@pytest.mark.asyncio
async def test_open_an_xlsx_file(grid: BatchGrid, tmp_path: Path) -> None:
    path = tmp_path / "leads.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Customer", "Suburb", "Mobile", "Priority"])
    sheet.append(["Ann Lee", "Kew", 412345678, 5])  # numbers, as Excel keeps them
    sheet.append(["Bob Ray", "Carlton", "0412 345 679", None])
    book.save(path)
    await grid.open_file(path)
    await settled(grid)
    model = grid.model
    assert model.rowCount() == 2
    assert model.header == ["Customer", "Suburb", "Mobile", "Priority"]
    assert model.mapping == ["Name", "City", "FirstPhone", "njPriority"]
    assert model.index(0, 2).data() == "412345678"
    assert model.index(0, 2).data(SeverityRole) == WARNING  # the lost leading 0
    assert model.row_at(0).source == "leads.xlsx"
    assert "Opened 2 rows" in grid.footer.status.text()


@pytest.mark.asyncio
async def test_drop_a_csv_file(grid: BatchGrid, tmp_path: Path) -> None:
    path = tmp_path / "drop.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Mobile"])
        writer.writerow(["Zoë Ng", "0412 345 678"])
        writer.writerow(["Al, Jr", "0412 345 679"])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        QPoint(50, 50), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(grid, enter)
    assert enter.isAccepted()
    loaded = asyncio.ensure_future(next_signal(grid.loaded))
    drop = QDropEvent(
        QPointF(50, 50), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(grid, drop)
    await loaded
    await settled(grid)
    assert [r.cells for r in grid.model.all_rows()] == [
        ["Zoë Ng", "0412 345 678"],
        ["Al, Jr", "0412 345 679"],
    ]
    assert grid.model.summary() == (2, 0, 0, 0)


@pytest.mark.asyncio
async def test_bad_input_gives_a_message(grid: BatchGrid, tmp_path: Path) -> None:
    mime = QMimeData()
    mime.setText("\r\n\r\n")
    QApplication.clipboard().setMimeData(mime)
    await grid.paste_from_clipboard()
    assert "no table" in grid.footer.status.text()
    assert grid.model.rowCount() == 0
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    await grid.open_file(broken)
    assert "broken.xlsx" in grid.footer.status.text()
    assert grid.model.rowCount() == 0
    other = QMimeData()
    other.setUrls([QUrl.fromLocalFile(str(tmp_path / "photo.png"))])
    assert not grid.handle_drop(other)
    assert not grid.task_errors


@pytest.mark.asyncio
async def test_a_second_paste_adds_or_replaces(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    grid.view.clearSelection()
    more = [HEADER, *[[f"More {i}", "", "", "", f"04990000{i:02d}", "", ""] for i in range(5)]]
    await paste_with_keyboard(qtbot, grid, more)
    assert grid.model.rowCount() == 15  # same columns: added below
    other = [["Name", "Phone"], ["Solo", "0412 000 999"]]
    grid.view.clearSelection()
    await paste_with_keyboard(qtbot, grid, other)
    assert grid.model.rowCount() == 1  # other columns: the grid holds the new rows
    assert "Undo" in grid.footer.status.text()
    grid.undo_stack.undo()
    await settled(grid)
    assert grid.model.rowCount() == 15
    assert grid.model.titles == HEADER


@pytest.mark.asyncio
@pytest.mark.parametrize("exact", [True, False], ids=["exact-values", "no-exact-values"])
async def test_big_paste_fetches_the_html_only_for_lost_digits(
    qtbot: QtBot, grid: BatchGrid, monkeypatch: pytest.MonkeyPatch, exact: bool
) -> None:
    monkeypatch.setattr(paste, "BIG_TEXT", 200)
    monkeypatch.setattr(paste, "BIG_HTML", 200)
    read: list[bool] = []
    real_read = paste.read_clipboard

    def counted(formats: dict[str, str | bytes], text_table: object = None) -> object:
        read.append("text/html" in formats)
        return real_read(formats, text_table)  # type: ignore[arg-type]

    monkeypatch.setattr(paste, "read_clipboard", counted)
    rows = [HEADER, *lead_rows(60)]  # row 3 holds "4.12E+08"
    mime = excel_clipboard(rows)
    if exact:
        value = '<td x:num="412345678">4.12E+08</td>'
        mime.setHtml(mime.html().replace("<td>4.12E+08</td>", value, 1))
    QApplication.clipboard().setMimeData(mime)
    loaded = asyncio.ensure_future(next_signal(grid.loaded))
    await grid.paste_from_clipboard()
    await loaded
    await settled(grid)
    if exact:  # the text first, then the HTML for its exact values
        assert read == [False, True]
        assert grid.model.row_at(2).cell(4) == "412345678"
        assert grid.model.index(2, 4).data(SeverityRole) == WARNING  # its leading 0, fixable
    else:  # the HTML has nothing the text lacks: it is never brought over
        assert read == [False]
        assert grid.model.row_at(2).cell(4) == "4.12E+08"
        assert grid.model.index(2, 4).data(SeverityRole) == ERROR


@pytest.mark.asyncio
async def test_cells_are_painted_with_their_problems(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    model = grid.model
    grid.view.clearSelection()
    grid.view.setCurrentIndex(QModelIndex())
    image = grid.view.viewport().grab().toImage()

    def colour_at(row: int, column: int) -> str:
        x = grid.view.columnViewportPosition(column) + grid.view.columnWidth(column) - 6
        y = grid.view.rowViewportPosition(row) + 3
        return image.pixelColor(x, y).name()

    assert colour_at(2, 4) == TINTS[ERROR][0]  # "4.12E+08"
    assert colour_at(1, 4) == TINTS[WARNING][0]  # the lost leading 0
    assert colour_at(0, 4) == grid.view.palette().base().color().name()
    assert model.headerData(2, Qt.Orientation.Vertical, SeverityRole) == ERROR
    select_cell(grid, 0, 0)
    image = grid.view.viewport().grab().toImage()
    assert colour_at(0, 0) == grid.view.palette().highlight().color().name()
    # The row numbers fit: the header grows with the number of digits.
    narrow = grid.view.verticalHeader().sizeHint().width()
    grid.view.clearSelection()
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(100)])  # rows added below
    assert model.rowCount() == 110
    assert grid.view.verticalHeader().sizeHint().width() > narrow


@pytest.mark.asyncio
async def test_copy_puts_the_selection_on_the_clipboard(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(3)])
    selection = grid.view.selectionModel()
    select_cell(grid, 0, 0)
    selection.select(grid.model.index(1, 1), selection.SelectionFlag.Select)
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "Person 1\t\r\n\t2 Main St\r\n"


@pytest.mark.asyncio
async def test_in_the_window_pasted_leads_are_delivered(qtbot: QtBot, tmp_path: Path) -> None:
    """The whole way: Ctrl+V in the window, map, fix, undo/redo, queue, watch the queue view."""
    from noojee_desk.core.delivery.dispatcher import RetryTiming
    from noojee_desk.ui.main_window import MainWindow
    from noojee_desk.ui.queue.model import COL_STATUS

    timing = RetryTiming(soon=(0.05, 0.1), backoff_base=0.1, backoff_cap=0.5)
    desk = make_desk(tmp_path / "home", timing=timing)
    emulator = demo_emulator(desk)
    emulator.set_faults(capacity=16, min_service=0.002, jitter=0.0)
    window = MainWindow(desk)
    qtbot.addWidget(window)
    window.resize(1280, 900)
    window.show()
    try:
        await window.start(demo=True)
        await until(lambda: window.pickers.target() is not None, window.grid.status_changed)
        grid = window.grid
        assert window.entry_tabs.indexOf(grid) >= 0
        rows = [HEADER, *lead_rows(500)]
        QApplication.clipboard().setMimeData(excel_clipboard(rows))
        loaded = asyncio.ensure_future(next_signal(grid.loaded))
        window.act_paste.trigger()  # File ▸ Paste leads
        await loaded
        await settled(grid)
        assert window.entry_tabs.currentWidget() is grid
        combo = grid.header.combos[5]  # "Alt"
        combo.setCurrentIndex(combo.findData("SecondPhone"))
        combo.activated.emit(combo.currentIndex())
        await settled(grid)
        entry = next(
            i
            for i, e in enumerate(grid.problems.entries())
            if e.problem.fix is not None and e.problem.fix.label == "Add the leading 0"
        )
        row_id = grid.problems.entry(entry).row_id
        click_fix(qtbot, grid, entry)
        fixed = grid.model.row_by_id(row_id).cell(4)
        assert fixed.startswith("04")
        grid.undo_stack.undo()
        grid.undo_stack.redo()
        await settled(grid)
        clean, warned, blocked, _ = grid.model.summary()
        assert blocked >= 30  # 40 when the template requires FirstPhone
        opened = asyncio.ensure_future(next_signal(grid.summary_opened))
        qtbot.mouseClick(grid.footer.queue_button, Qt.MouseButton.LeftButton)
        await opened  # after a look at what was delivered before
        assert "already delivered" not in grid.summary_dialog.informativeText()
        confirm = grid.summary_dialog.findChild(type(grid.footer.queue_button), "confirmQueue")
        qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
        count = clean + warned
        # The rows leave the grid once the outbox holds them; the queue view shows each lead.
        await until(lambda: grid.model.total() == blocked, grid.status_changed)
        model = window.queue_model

        def statuses() -> set[str]:
            return {model.index(r, COL_STATUS).data() for r in range(model.rowCount())}

        await until(lambda: model.rowCount() == count, model.rowsInserted, model.modelReset)
        await until(lambda: statuses() <= {"Delivered", "Rejected"}, model.dataChanged, limit=60)
        inserted = {lead["fields"]["FirstPhone"] for lead in emulator.leads()}
        assert "0" + fixed[1:] in inserted
        assert (
            len(emulator.leads())
            + sum(model.index(r, COL_STATUS).data() == "Rejected" for r in range(model.rowCount()))
            == count
        )
        assert not grid.undo_stack.canUndo()  # queued leads cannot be undone: history cleared
        for _ in range(10):  # nothing queued comes back into the grid
            grid.undo_stack.undo()
        await settled(grid)
        assert grid.model.total() <= 500 - count + blocked

        # Export the results and read the file back.
        path = tmp_path / "results.csv"
        window.export_results("csv")
        window.export_dialog.fileSelected.emit(str(path))
        await until(path.exists, limit=30)  # written beside, then moved in place whole
        with path.open(encoding="utf-8-sig", newline="") as handle:
            table = list(csv.DictReader(handle))
        assert len(table) == count
        by_phone = {row["FirstPhone"]: row for row in table}
        assert by_phone["0" + fixed[1:]]["Status"] == "delivered"
        assert {row["Status"] for row in table} <= {"delivered", "rejected"}
        assert all(row["njExternalLeadId"] for row in table)
        sources = {int(row["Row"]) for row in table}
        assert sources <= set(range(2, 502))  # rows of the paste: its header is row 1
        assert len(sources) == count  # each lead keeps the row it came from
    finally:
        await window.shutdown()
        window.close()


@pytest.mark.asyncio
async def test_remove_rows_and_clear_are_undoable(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    model = grid.model
    select_cell(grid, 2, 0)
    selection = grid.view.selectionModel()
    selection.select(model.index(4, 1), selection.SelectionFlag.Select)
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert model.rowCount() == 8
    assert "Person 3" not in column_values(grid, 0)
    assert "Person 5" not in column_values(grid, 0)
    await settled(grid)
    assert model.summary() == (5, 1, 2, 0)  # the two removed rows were blocked
    qtbot.mouseClick(grid.toolbar.clear_button, Qt.MouseButton.LeftButton)
    assert model.rowCount() == 0
    assert not grid.footer.queue_button.isEnabled()
    grid.undo_stack.undo()
    assert model.rowCount() == 8
    grid.undo_stack.undo()
    await settled(grid)
    assert column_values(grid, 0)[:5] == [f"Person {i}" for i in range(1, 6)]
    assert model.summary() == (5, 1, 4, 0)


def test_the_collector_waits_while_a_paste_is_worked_on(qapp: QApplication) -> None:
    """A collection on the UI thread would walk every object a checking worker makes."""
    runs: list[str] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs.append(phase)

    collector = MainThreadCollector(qapp)
    gc.callbacks.append(seen)
    try:
        with paused_gc():
            collector.tick()
            assert runs == []
        collector.tick()
        assert runs == ["start"]
    finally:
        gc.callbacks.remove(seen)
        collector.stop()
        gc.enable()


def test_the_layout_dialog_reads_a_header_from_the_clipboard(qapp: QApplication) -> None:
    from noojee_desk.ui.layout_dialog import LayoutDialog

    dialog = LayoutDialog(LAYOUT, "Home Loans")
    mime = QMimeData()
    mime.setText("Full name\tMobile\tSuburb\r\nAnn\t0412 345 678\tCarlton\r\n")
    QApplication.clipboard().setMimeData(mime)
    dialog.findChild(QPushButton, "layoutFromClipboard").click()
    layout = dialog.layout()
    assert layout.names[:3] == ("Full name", "Mobile", "Suburb")
    assert "Mobile" in layout.phone_fields
    dialog.deleteLater()


# -- the keyboard, the words, the row numbers ------------------------------------------------------


def key(qtbot: QtBot, widget: QWidget, k: Qt.Key, mods: Qt.KeyboardModifier = NO_MODS) -> None:
    qtbot.keyClick(widget, k, mods)


def row_numbers(grid: BatchGrid) -> list[str]:
    model = grid.model
    return [model.headerData(r, Qt.Orientation.Vertical) for r in range(model.rowCount())]


@pytest.mark.asyncio
@pytest.mark.qt_log_ignore("This plugin does not support")  # a drop-down's list opens
async def test_keyboard_only_paste_fix_edit_remove_and_queue(qtbot: QtBot, grid: BatchGrid) -> None:
    """Everything from the keyboard: paste, move, fix, the problem list and back, edit, choose
    a column's field, remove a row, queue; the rows left keep their numbers in the paste."""
    QApplication.clipboard().setMimeData(excel_clipboard([HEADER, *lead_rows(6)]))
    view = grid.view
    grid.activateWindow()
    view.setFocus()
    loaded = asyncio.ensure_future(next_signal(grid.loaded))
    key(qtbot, view, Qt.Key.Key_V, CTRL)
    await loaded
    await settled(grid)
    model = grid.model
    # Header row 1, then data rows 2..7. Row 3 lost its leading 0 (a warning with a fix).
    assert row_numbers(grid) == ["2", "3", "4", "5", "6", "7"]
    key(qtbot, view, Qt.Key.Key_Home, CTRL)
    key(qtbot, view, Qt.Key.Key_Down)
    for _ in range(4):
        key(qtbot, view, Qt.Key.Key_Right)
    assert (view.currentIndex().row(), view.currentIndex().column()) == (1, 4)
    assert view.currentIndex().data(SeverityRole) == WARNING
    key(qtbot, view, Qt.Key.Key_Period, CTRL)  # the suggested fix of this cell
    assert view.currentIndex().data() == "0410000002"
    assert view.currentIndex().data(SeverityRole) is None
    assert grid.undo_stack.undoText() == "Fix: Add the leading 0"

    # F6 to the problem list; moving in it shows each problem's cell and its whole text.
    key(qtbot, view, Qt.Key.Key_F6)
    problems = grid.panel.list
    assert problems.hasFocus()
    assert problems.currentIndex().isValid()
    while grid.panel.current_entry().problem.field != "njPriority":
        key(qtbot, problems, Qt.Key.Key_Down)
    entry = grid.panel.current_entry()
    assert model.row_number(entry.row_id) == 6  # "Person 5", priority 150
    assert grid.panel.details.text() == grid.problems.details(entry)
    assert view.currentIndex().column() == 6  # its cell is shown in the table
    key(qtbot, problems, Qt.Key.Key_Period, CTRL)  # its fix, from the list
    assert model.row_by_id(entry.row_id).cell(6) == "100"
    await settled(grid)
    # Return on a problem goes to its cell, in the table.
    problems.setFocus()
    problems.setCurrentIndex(grid.problems.index(0))
    first = grid.panel.current_entry()
    key(qtbot, problems, Qt.Key.Key_Return)
    assert view.hasFocus()
    assert model.row_at(view.currentIndex().row()).id == first.row_id

    # Edit a cell: F2, type, Return. The scientific number in row 4 becomes a real one.
    key(qtbot, view, Qt.Key.Key_Home, CTRL)
    key(qtbot, view, Qt.Key.Key_Down)
    key(qtbot, view, Qt.Key.Key_Down)
    for _ in range(4):
        key(qtbot, view, Qt.Key.Key_Right)
    assert view.currentIndex().data() == "4.12E+08"
    key(qtbot, view, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "0412 999 888")
    edited = model.index(2, 4)
    key(qtbot, editor, Qt.Key.Key_Return)
    await until(lambda: edited.data() == "0412 999 888", model.dataChanged)
    await settled(grid)
    assert edited.data(SeverityRole) is None

    # The field of a column, by keyboard: Alt+Down opens its list, Return chooses, and the
    # table has the focus again. "Alt" (column 5) holds the only number of row 5.
    view.setFocus()
    key(qtbot, view, Qt.Key.Key_Right)  # column 5
    assert view.currentIndex().column() == 5
    key(qtbot, view, Qt.Key.Key_Down, ALT)
    combo = grid.header.combos[5]
    assert combo.view().isVisible()
    combo.view().setCurrentIndex(combo.model().index(combo.findData("SecondPhone"), 0))
    key(qtbot, combo.view(), Qt.Key.Key_Return)
    await settled(grid)
    assert model.mapping[5] == "SecondPhone"
    assert not combo.view().isVisible()
    await asyncio.sleep(0.05)
    # The offscreen platform leaves the closed list's window active; a desktop gives the
    # activation back to the window, whose focus is then in the table again.
    grid.activateWindow()
    await until(view.hasFocus, limit=5)
    assert not combo.hasFocus()
    # An arrow key on a closed drop-down opens its list instead of changing the field;
    # Escape on it goes back to the table.
    combo.setFocus()
    key(qtbot, combo, Qt.Key.Key_Down)
    assert combo.view().isVisible()
    combo.hidePopup()
    assert model.mapping[5] == "SecondPhone"
    grid.activateWindow()
    combo.setFocus()
    key(qtbot, combo, Qt.Key.Key_Escape)
    await until(view.hasFocus, limit=5)

    # Remove the row without a name (row 7) with Ctrl+-.
    key(qtbot, view, Qt.Key.Key_End, CTRL)
    key(qtbot, view, Qt.Key.Key_Home)
    assert model.row_at(view.currentIndex().row()).cell(0) == ""
    key(qtbot, view, Qt.Key.Key_Minus, CTRL)
    await settled(grid)
    assert row_numbers(grid) == ["2", "3", "4", "5", "6"]
    assert model.summary()[2] == 0  # nothing is blocked now

    # Queue with Ctrl+Return; Return confirms the summary.
    requested = asyncio.ensure_future(next_signal(grid.queue_requested))
    key(qtbot, view, Qt.Key.Key_Return, CTRL)
    dialog = grid.summary_dialog
    assert dialog is not None
    assert dialog.isVisible()
    key(qtbot, dialog, Qt.Key.Key_Return)
    leads, _source, _again = await requested
    assert [lead.row for lead in leads] == [2, 3, 4, 5, 6]
    grid.rows_queued([lead.row_id for lead in leads])
    assert model.total() == 0


@pytest.mark.asyncio
async def test_rows_left_after_queueing_keep_their_numbers(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(8)])
    model = grid.model
    # The header is row 1 of the paste, the data rows 2 to 9.
    assert row_numbers(grid) == ["2", "3", "4", "5", "6", "7", "8", "9"]
    assert model.headerData(0, Qt.Orientation.Vertical, Qt.ItemDataRole.ToolTipRole).startswith(
        "Pasted row 2"
    )
    requested = asyncio.ensure_future(next_signal(grid.queue_requested))
    grid.request_queue()
    grid.summary_dialog.findChild(QPushButton, "confirmQueue").click()
    leads, _source, _again = await requested
    grid.rows_queued([lead.row_id for lead in leads])
    await settled(grid)
    # Left: "4.12E+08" (data row 3), no phone (4), priority 150 (5), no name (6).
    assert row_numbers(grid) == ["4", "5", "6", "7"]
    texts = [grid.problems.index(i).data() for i in range(grid.problems.rowCount())]
    assert texts[0].startswith("Row 4 · Mobile: ")
    # The filter keeps them too.
    grid.toolbar.filter_box.setChecked(True)
    assert row_numbers(grid) == ["4", "5", "6", "7"]


@pytest.mark.asyncio
async def test_a_file_row_names_its_file_and_other_rows_by_their_number(
    grid: BatchGrid, tmp_path: Path
) -> None:
    path = tmp_path / "leads.csv"
    rows = [HEADER, *lead_rows(4)]
    rows.append(["Twin", "1 Main St", "Carlton", "3053", rows[1][4], "", ""])  # row 1's number
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    await grid.open_file(path)
    await settled(grid)
    model = grid.model
    assert row_numbers(grid) == ["2", "3", "4", "5", "6"]
    tip = model.headerData(0, Qt.Orientation.Vertical, Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Row 2 of leads.csv")
    # The twin names the row as the grid and the file number it (2), not its place (1).
    assert "also in row 2 " in model.index(4, 4).data(Qt.ItemDataRole.ToolTipRole)
    # Rows taken out before it change nothing.
    grid.view.selectRow(1)
    grid.editor.remove_selected_rows()
    await settled(grid)
    assert row_numbers(grid) == ["2", "4", "5", "6"]
    assert "also in row 2 " in model.index(3, 4).data(Qt.ItemDataRole.ToolTipRole)


@pytest.mark.asyncio
async def test_the_note_about_a_change_clears_on_the_next_edit(
    qtbot: QtBot, grid: BatchGrid
) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    grid.apply_all_fixes()
    assert "Applied 2 suggested fixes" in grid.footer.status.text()
    await settled(grid)
    grid.model.setData(grid.model.index(0, 2), "Kew")  # an edit in the table
    assert grid.footer.status.text() == ""
    grid.apply_all_fixes()  # nothing left to fix: a new note replaces nothing stale
    assert "no suggested fixes" in grid.footer.status.text()
    grid.undo_stack.undo()  # undo is a change too
    assert grid.footer.status.text() == ""
    # A paste says what it did instead.
    select_cell(grid, 0, 0)
    QApplication.clipboard().setMimeData(excel_clipboard([["Ann"]]))
    await grid.paste_from_clipboard()
    assert grid.footer.status.text() == "Pasted 1 cells."


@pytest.mark.asyncio
async def test_undo_after_queueing_is_cleared_and_says_so(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(10)])
    grid.apply_all_fixes()
    await settled(grid)
    assert grid.undo_action.isEnabled()
    requested = asyncio.ensure_future(next_signal(grid.queue_requested))
    grid.request_queue()
    grid.summary_dialog.findChild(QPushButton, "confirmQueue").click()
    leads, _source, _again = await requested
    grid.rows_queued([lead.row_id for lead in leads])
    assert not grid.undo_stack.canUndo()
    assert not grid.undo_action.isEnabled()
    assert "cannot be undone" in grid.footer.status.text()
    left = [r.cells for r in grid.model.all_rows()]
    grid.view.setFocus()
    qtbot.keyClick(grid.view, Qt.Key.Key_Z, CTRL)  # does nothing, as the button shows
    assert [r.cells for r in grid.model.all_rows()] == left


@pytest.mark.asyncio
async def test_a_long_problem_message_can_be_read_in_full(qtbot: QtBot, grid: BatchGrid) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(4)])
    grid.splitter.setSizes([1100, 200])  # a narrow list cuts every message short
    panel = grid.panel
    position = next(
        i for i, e in enumerate(grid.problems.entries()) if "scientific" in e.problem.message
    )
    entry = grid.problems.entry(position)
    message = entry.problem.message
    assert len(message) > 60
    index = grid.problems.index(position)
    assert message in index.data(Qt.ItemDataRole.ToolTipRole)
    panel.list.setCurrentIndex(index)
    assert panel.details.text() == grid.problems.details(entry)
    assert message in panel.details.text()
    assert panel.details.wordWrap()
    assert panel.details.isVisible()


@pytest.mark.asyncio
async def test_every_control_is_named_and_its_keys_are_in_its_tooltip(
    qtbot: QtBot, grid: BatchGrid
) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(4)])
    controls = grid.findChildren(QAbstractButton) + grid.findChildren(QComboBox)
    controls += grid.findChildren(QAbstractItemView)
    assert len(controls) > 12

    def in_combo(widget: QWidget) -> bool:  # a drop-down's own list
        parent = widget.parentWidget()
        while parent is not None and parent is not grid:
            if isinstance(parent, QComboBox):
                return True
            parent = parent.parentWidget()
        return False

    controls = [w for w in controls if not in_combo(w)]
    unnamed = [w.objectName() or type(w).__name__ for w in controls if not w.accessibleName()]
    assert not unnamed
    actions = grid.grid_actions
    for action, keys in (
        (actions.fix, "Ctrl+."),
        (actions.fix_all, "Ctrl+Shift+F"),
        (actions.remove, "Ctrl+-"),
        (actions.problems, "F6"),
        (actions.field, "Alt+Down"),
        (actions.undo, "Ctrl+Z"),
    ):
        assert keys in action.toolTip(), action.objectName()
    assert "Ctrl+Return" in grid.footer.queue_button.toolTip()
    assert "Ctrl+Shift+F" in grid.panel.fix_all_button.toolTip()
    assert "Alt+Down" in grid.header.combos[0].toolTip()
    assert "Ctrl+Z" in grid.toolbar.undo_button.toolTip()


@pytest.mark.asyncio
async def test_problem_cells_carry_a_mark_as_well_as_a_colour(
    qtbot: QtBot, grid: BatchGrid
) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(4)])
    view = grid.view
    view.clearSelection()
    view.setCurrentIndex(QModelIndex())
    for dark in (False, True):
        grid.model.set_dark(dark)
        image = view.viewport().grab().toImage()

        def mark_at(row: int, column: int, dx: int, dy: int, image: QImage = image) -> QColor:
            x = view.columnViewportPosition(column) + view.columnWidth(column) - 16 + dx
            y = view.rowViewportPosition(row) + (view.rowHeight(row) - 12) // 2 + dy
            return image.pixelColor(x, y)

        def near(colour: QColor, wanted: str) -> bool:
            other = QColor(wanted)
            return all(
                abs(a - b) < 40
                for a, b in zip(colour.getRgb()[:3], other.getRgb()[:3], strict=True)
            )

        assert near(mark_at(2, 4, 6, 2), MARKS[ERROR])  # "4.12E+08": the round mark
        assert near(mark_at(1, 4, 4, 8), MARKS[WARNING])  # the lost 0: the triangle
        assert not near(mark_at(0, 4, 6, 2), MARKS[ERROR])  # a clean cell has none
    # Screen readers hear the severity with the message.
    description = grid.model.index(2, 4).data(Qt.ItemDataRole.AccessibleDescriptionRole)
    assert description.startswith("Error: ")
    assert grid.model.index(2, 4).data(Qt.ItemDataRole.DecorationRole) is not None


@pytest.mark.asyncio
async def test_the_table_keeps_room_for_ten_rows_in_a_squeezed_splitter(
    qtbot: QtBot, grid: BatchGrid
) -> None:
    """The window's splitter may give the grid little height: the table keeps its rows."""
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(40)])
    holder = QSplitter(Qt.Orientation.Vertical)
    qtbot.addWidget(holder)
    holder.addWidget(grid)
    holder.addWidget(QWidget())
    holder.resize(1200, 700)
    holder.show()
    holder.setSizes([150, 550])  # far less than the grid needs
    await until(lambda: grid.view.isVisible(), limit=5)
    view = grid.view
    shown = view.viewport().height() // view.rowHeight(0)
    assert shown >= view.min_rows()
    # Ten rows wherever the screen has room for them; fewer only on a short screen.
    assert view.rows_for(1040) == GridView.MIN_ROWS
    assert GridView.FEWEST_ROWS <= view.rows_for(512) < GridView.MIN_ROWS
    assert holder.sizes()[0] > 150
    grid.setParent(None)  # the grid fixture closes the grid itself


@pytest.mark.asyncio
async def test_one_row_left_after_queueing_is_said_in_the_singular(
    qtbot: QtBot, grid: BatchGrid
) -> None:
    await paste_with_keyboard(qtbot, grid, [HEADER, *lead_rows(3)])
    assert grid.model.total() == 3
    ids = [grid.model.row_at(i).id for i in range(3)]
    grid.rows_queued(ids[:2])  # as the window does once two are stored
    await settled(grid)
    assert grid.model.total() == 1
    assert "Queued 2 leads. 1 row stays here to be fixed." in grid.footer.status.text()
    assert grid.footer.counts.text().startswith("1 row ·")
