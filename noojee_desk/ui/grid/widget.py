"""Paste many leads: the batch grid with its mapping row, problem list, fixes, undo and queueing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPalette, QUndoStack
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from noojee_desk.core.leads import paste
from noojee_desk.core.leads.layouts import FieldLayout, default_layout
from noojee_desk.core.leads.mapping import detect_mapping, mapping_key
from noojee_desk.core.leads.paste import (
    GridRow,
    GridState,
    ProblemEntry,
    grid_leads,
    has_data,
    header_as_row,
    header_read,
    load_note,
    next_source_row,
    prepare_table,
    problem_message,
    remap,
)
from noojee_desk.core.leads.spreadsheets import read_file
from noojee_desk.core.leads.table import Table
from noojee_desk.core.leads.validate import Validator
from noojee_desk.ui.grid.checking import GridChecker
from noojee_desk.ui.grid.clipboard import exact_values_html, files_in, paste_formats
from noojee_desk.ui.grid.controls import (
    GridFooter,
    GridToolbar,
    counted,
    keys_text,
    make_actions,
    queue_summary,
    with_keys,
)
from noojee_desk.ui.grid.editing import GridEditor
from noojee_desk.ui.grid.mapping_header import MappingHeader
from noojee_desk.ui.grid.model import BatchModel
from noojee_desk.ui.grid.problems import ProblemListModel, ProblemPanel
from noojee_desk.ui.grid.undo import AddRowsCommand, MappingCommand, ResetCommand
from noojee_desk.ui.grid.view import GridView, RowHeader
from noojee_desk.ui.tasks import Tasks

log = logging.getLogger(__name__)

#: Rows added to the model per step while a big paste fills the grid.
FILL_CHUNK = 2_000
#: How the table may be edited while no load runs.
EDITING = (
    QAbstractItemView.EditTrigger.DoubleClicked
    | QAbstractItemView.EditTrigger.EditKeyPressed
    | QAbstractItemView.EditTrigger.AnyKeyPressed
)


class BatchGrid(QWidget):
    """Paste or open many leads, fix every problem in place, then queue the valid ones.

    The window wires ``queue_requested(leads: list[GridLead], source: str, send_again: bool)`` to
    the outbox and calls ``rows_queued(row_ids, skipped)`` once they are stored (or
    ``queue_failed(message)``); the grid keeps the rows until then. ``delivered_lookup`` (set by
    the window) tells, for the fields of ready rows, which were delivered to the chosen target
    before (index -> when), so the summary asks whether to skip or send them again.
    ``mapping_saved(signature, mapping)`` asks the window to remember a mapping the person chose,
    keyed by the header's signature.

    The parts: ``model`` (the rows), ``view`` with ``header`` (the mapping row), ``panel`` (the
    problem list), ``checker`` (when rows are checked), ``editor`` (changes to cells and rows),
    ``toolbar`` and ``footer``. The grid loads tables, queues rows and keeps the parts in step.
    """

    queue_requested = Signal(list, str, bool)
    mapping_saved = Signal(str, list)
    rows_shown = Signal(int)  # the first rows of a paste or file are in the grid
    loaded = Signal(int)  # a paste or file is fully in the grid and checked
    checked = Signal()  # a check of the whole grid finished
    status_changed = Signal(str)
    summary_opened = Signal()  # the question before queueing is on screen (``summary_dialog``)

    def __init__(self, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("batchGrid")
        self.setAcceptDrops(True)
        self.tasks = tasks
        self._layout: FieldLayout | None = None
        self._saved: dict[str, list[str | None]] = {}
        self._target_ready = False
        self._busy = ""  # what a running load is doing; nothing else may change the grid then
        self._pending: set[int] = set()  # rows handed to the queue, not confirmed yet
        self._source = ""
        self._clipboard_changes = 0  # a paste that reads the clipboard twice checks this
        QApplication.clipboard().dataChanged.connect(self._clipboard_changed)
        self.summary_dialog: QMessageBox | None = None
        self.delivered_lookup: Callable[[list[dict[str, str]]], dict[int, float | None]] | None = (
            None
        )
        self._asking = False  # looking up earlier deliveries before the summary
        self.file_dialog: QFileDialog | None = None

        self.undo_stack = QUndoStack(self)
        self.model = BatchModel(self)
        self.problems = ProblemListModel(self.model, self)
        self.checker = GridChecker(
            self.model,
            self.problems,
            tasks,
            lambda: bool(self._busy),
            lambda: bool(self._pending),
            parent=self,
        )
        self.checker.changed.connect(self._sync_controls)
        self.checker.checked.connect(self.checked)
        self._build()
        self.editor = GridEditor(
            self.model,
            self.view,
            self.undo_stack,
            busy=lambda: self._busy,
            pending=lambda: bool(self._pending),
            source=lambda: self._source,
            say=self._say,
            parent=self,
        )
        self._connect()
        self._sync_controls()

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        self.view = GridView()
        self.view.setObjectName("batchTable")
        self.view.setAccessibleName("Leads to queue")
        self.header = MappingHeader(self.view)
        self.view.setHorizontalHeader(self.header)
        self.view.setModel(self.model)
        self.view.setWordWrap(False)
        self.view.setAlternatingRowColors(False)
        self.view.setEditTriggers(EDITING)
        vertical = RowHeader(self.view)
        self.view.setVerticalHeader(vertical)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.header.setResizeContentsPrecision(200)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

        self.grid_actions = make_actions(self, self.undo_stack)
        self.undo_action = self.grid_actions.undo
        self.redo_action = self.grid_actions.redo
        self.toolbar = GridToolbar(self.grid_actions)
        self.panel = ProblemPanel(self.problems)
        self.panel.setMinimumWidth(220)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("gridSplitter")
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.panel)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([800, 280])
        self.footer = GridFooter()
        actions = self.grid_actions
        self.footer.set_queue_keys(actions.queue)
        self.panel.set_keys(actions.fix, actions.fix_all, actions.problems)
        self.header.keys_hint = keys_text(actions.field)
        self.view.setAccessibleDescription(
            "Arrow keys move, F2 or typing edits. "
            + "; ".join(
                with_keys(text, action)
                for text, action in (
                    ("apply the cell's fix", actions.fix),
                    ("apply all fixes", actions.fix_all),
                    ("remove the selected rows", actions.remove),
                    ("choose the column's field", actions.field),
                    ("go to the problems", actions.problems),
                    ("queue the ready rows", actions.queue),
                )
            )
        )
        self.view.verticalHeader().setAccessibleName("Row numbers in the source")
        self.header.setAccessibleName("Column titles and the field each is sent as")
        corner = self.view.findChild(QAbstractButton, "qt_tableview_cornerbutton")
        if corner is not None:
            corner.setAccessibleName("Select all cells")

        # Every pixel of height goes to the rows: tight margins, one line above and below.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.footer)

    def _connect(self) -> None:
        editor = self.editor
        self.model.cells_edited.connect(self._cells_edited)
        self.model.structure_changed.connect(self._structure_changed)
        self.model.checks_changed.connect(self._sync_controls)
        self.header.picked.connect(self._mapping_picked)
        self.view.paste_requested.connect(self.paste_from_clipboard)
        self.view.copy_requested.connect(editor.copy_selection)
        self.view.clear_requested.connect(editor.clear_selected_cells)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.grid_actions.open.triggered.connect(self.choose_file)
        self.grid_actions.paste.triggered.connect(self.paste_from_clipboard)
        self.grid_actions.remove.triggered.connect(editor.remove_selected_rows)
        self.toolbar.header_box.toggled.connect(self._header_toggled)
        self.toolbar.filter_box.toggled.connect(self._filter_toggled)
        self.toolbar.clear_button.clicked.connect(editor.clear)
        self.panel.problem_chosen.connect(editor.show_problem)
        self.panel.problem_entered.connect(self._go_to_problem)
        self.panel.fix_requested.connect(lambda e: editor.apply_fix(e.row_id, e.problem))
        self.panel.fix_all_requested.connect(self.apply_all_fixes)
        self.footer.queue_button.clicked.connect(self.request_queue)
        actions = self.grid_actions
        actions.fix.triggered.connect(self.apply_current_fix)
        actions.fix_all.triggered.connect(self.apply_all_fixes)
        actions.queue.triggered.connect(self.request_queue)
        actions.problems.triggered.connect(self.toggle_problems)
        actions.field.triggered.connect(self.choose_field)
        # After the drop-down's list has closed (which gives its focus back to the drop-down).
        self.header.done.connect(lambda: QTimer.singleShot(0, self._table_focus))
        self.undo_stack.indexChanged.connect(self._changed_by_person)

    @property
    def busy(self) -> str:
        """What a running paste or file load is doing ("" when none runs)."""
        return self._busy

    @property
    def checking(self) -> bool:
        """Whether a check of the whole grid is due or running."""
        return self.checker.checking

    # -- configuration by the window -----------------------------------------------------------

    def set_layout(
        self, layout: FieldLayout, validator: Validator, saved_mappings: dict[str, list[str | None]]
    ) -> None:
        """The template changed: new target fields, a new validator, the saved mappings."""
        self._layout = layout
        self.checker.validator = validator
        self._saved = dict(saved_mappings)
        titles = {spec.name: spec.title for spec in layout.fields}
        self.header.set_choices(
            layout.mappable_names, layout.phone_fields, layout.required_fields, titles
        )
        if self.model.columnCount() and not self._busy:
            header = self.model.header
            names = set(layout.mappable_names)
            if header is not None:
                sample = [r.cells for r in self.model.all_rows()[:20]]
                mapping = detect_mapping(header, layout, self._saved, sample)[1].to_list()
            else:
                mapping = [m if m in names else None for m in self.model.mapping]
            self.model.set_mapping(mapping)
            self.header.set_mapping(self.model.mapping)
        self.checker.schedule(0, refilter=True)
        self._sync_controls()

    def set_target_ready(self, ready: bool) -> None:
        """Whether a template, campaign and allocation are chosen (queueing needs them)."""
        self._target_ready = ready
        self._sync_controls()

    def rows_queued(self, row_ids: Sequence[int], skipped: int = 0) -> None:
        """The window stored these rows in the outbox (``skipped`` of them left out as delivered
        before): take them out of the grid for good.

        Queued leads cannot be taken back by Undo, and the steps before the queueing would
        only seem to do something (or undo edits of rows that are gone), so the undo history
        starts afresh, and the status line says so."""
        ids = list(row_ids)
        self._pending.difference_update(ids)
        self.model.remove_rows(ids, gone=True)
        self.problems.drop_rows(ids)
        had_steps = self.undo_stack.count() > 0
        self.undo_stack.clear()
        left = self.model.total()
        done = f"Queued {counted(len(ids) - skipped, 'lead')}."
        if skipped:
            done += f" {skipped:,} delivered before {'was' if skipped == 1 else 'were'} skipped."
        if left:
            stay = "stays" if left == 1 else "stay"
            done += f" {counted(left, 'row')} {stay} here to be fixed."
        if had_steps:
            done += " Queued leads cannot be undone, so Undo starts again from here."
        self._say(done)
        self._sync_controls()

    def queue_failed(self, message: str) -> None:
        """Queueing failed: the rows stay in the grid as they were."""
        ids = list(self._pending)
        self._pending.clear()
        self.model.set_queueing(ids, False)
        self._say(f"The leads were not queued: {message}", error=True)
        self._sync_controls()

    # -- reading input -------------------------------------------------------------------------

    def paste_from_clipboard(self) -> asyncio.Task[Any] | None:
        """Ctrl+V: into an empty grid (new rows, header detected) or into the selected cells."""
        formats, html_later = paste_formats(QApplication.clipboard().mimeData())
        if not formats:
            self._say("The clipboard holds no text. Copy cells in a spreadsheet first.", error=True)
            return None
        return self.tasks.spawn(self._paste(formats, html_later), name="paste leads")

    def open_file(self, path: str | Path) -> asyncio.Task[Any]:
        """Read a CSV, TSV, TXT or XLSX file into the grid (off the UI thread)."""
        return self.tasks.spawn(self._open(Path(path)), name="open leads file")

    def load_table(self, table: Table, source: str) -> asyncio.Task[Any]:
        """Put ``table`` (a header row, then the rows) into the grid as a paste of it would be."""
        return self.tasks.spawn(self._load_table(table, source), name="load rows")

    async def _load_table(self, table: Table, source: str) -> None:
        if self._busy:
            self._say(f"Wait a moment: {self._busy}")
            return
        await self._load(table, source, time.perf_counter())

    def choose_file(self) -> None:
        dialog = QFileDialog(self, "Open leads file")
        dialog.setObjectName("openLeadsDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(["Lead files (*.csv *.tsv *.txt *.xlsx *.xlsm)", "All files (*)"])
        dialog.fileSelected.connect(self.open_file)
        self.file_dialog = dialog
        dialog.open()

    def _clipboard_changed(self) -> None:
        self._clipboard_changes += 1

    async def _paste(self, formats: dict[str, str | bytes], html_later: bool = False) -> None:
        if self._busy:
            self._say(f"Wait a moment: {self._busy}")
            return
        started = time.perf_counter()
        changes = self._clipboard_changes
        worker = self.tasks.in_worker
        self._set_busy("Reading the clipboard…")
        try:
            table = await worker(paste.read_clipboard, formats)
            if html_later and table.rows and await worker(paste.lost_digits, table):
                mime = QApplication.clipboard().mimeData()
                if changes == self._clipboard_changes and mime is not None and mime.hasHtml():
                    markup = mime.data("text/html")
                    await asyncio.sleep(0)  # the window paints between the steps
                    exact = await worker(exact_values_html, markup)
                    if exact is not None:
                        formats = {**formats, "text/html": exact}
                        self._progress("Reading the exact numbers from the clipboard…")
                        table = await worker(paste.read_clipboard, formats, table)
        finally:
            self._set_busy("")
        if not table.rows or not has_data(table):
            self._say(
                "The clipboard holds no table. Copy cells in a spreadsheet first.", error=True
            )
            return
        selected = self.view.selectionModel().selectedIndexes()
        if self.model.total() and selected:
            self.editor.paste_into_selection(table, selected)
            return
        stamp = time.strftime("%d %b %H:%M")
        await self._load(table, f"Pasted {stamp}", started)

    async def _open(self, path: Path) -> None:
        if self._busy:
            self._say(f"Wait a moment: {self._busy}")
            return
        started = time.perf_counter()
        self._set_busy(f"Reading {path.name}…")
        try:
            table = await self.tasks.in_worker(read_file, path)
        except Exception as exc:  # read_file reports problems itself; this is the last guard
            log.exception("reading %s failed", path)
            self._say(f"{path.name} could not be read: {exc}", error=True)
            return
        finally:
            self._set_busy("")
        if not table.rows:
            why = "; ".join(problem_message(p) for p in table.problems[:3])
            self._say(f"{path.name} holds no rows{': ' + why if why else '.'}", error=True)
            return
        await self._load(table, path.name, started)

    async def _load(self, table: Table, source: str, started: float) -> None:
        """Put a new table into the grid: rows in chunks, checked in the background."""
        layout = self._layout or default_layout()
        self._set_busy("Preparing rows…")
        try:
            first_id = self.model.reserve_ids(len(table.rows))
            prepared = await self.tasks.in_worker(
                prepare_table, table, layout, dict(self._saved), first_id, source
            )
        except Exception:
            self._set_busy("")
            raise
        rows = prepared.rows
        if not rows:
            self._set_busy("")
            self._say("There are no rows with data below the header.", error=True)
            return
        old = self.model.state()
        append = bool(old.rows) and old.titles == prepared.titles and old.header == prepared.header
        if old.rows and not append and self._pending:
            self._set_busy("")
            self._say("Wait until the leads being queued are stored, then paste again.", error=True)
            return
        if append:
            # The grid has one numbering: added rows go on after those there (a paste under
            # the same header numbers its rows from 2 again), their spacing kept.
            shift = next_source_row(old.rows) - rows[0].source_row
            for row in rows:
                row.source_row += shift
        validator = self.checker.validator
        self._set_busy(f"Adding {counted(len(rows), 'row')}…")
        shown_after = 0.0
        try:
            if not append:
                self.model.load(GridState(prepared.titles, prepared.header, prepared.mapping, []))
                self.header.set_mapping(prepared.mapping)
            # The check below covers every row: no other check of the grid is due.
            self.checker.loading(validator)
            # Rows first, then the check: filling the grid keeps the UI thread busy, and a
            # check running meanwhile would only make each step wait for the GIL.
            for start in range(0, len(rows), FILL_CHUNK):
                self.model.append_rows(rows[start : start + FILL_CHUNK], announce=False)
                if start == 0:
                    self.view.fit_columns()
                    self.rows_shown.emit(len(rows))
                    shown_after = time.perf_counter() - started
                if len(rows) > FILL_CHUNK:
                    done = min(start + FILL_CHUNK, len(rows))
                    self._progress(f"Adding rows… {done:,} of {len(rows):,}")
                await asyncio.sleep(0)
            check = None
            if validator is not None:
                snapshot_rows = (old.rows if append else []) + rows
                mapping = old.mapping if append else prepared.mapping
                check = self.checker.check_loaded(validator, mapping, snapshot_rows)
            if append:
                self.undo_stack.push(
                    AddRowsCommand(self.model, rows, f"Add {len(rows):,} rows", applied=True)
                )
            else:
                new = GridState(prepared.titles, prepared.header, prepared.mapping, list(rows))
                text = "Clear and paste" if old.rows else f"Paste {len(rows):,} rows"
                self.undo_stack.push(ResetCommand(self.model, new, text, applied=True, old=old))
            self._source = source if not append else self._source
            self.checker.restructured()
            if check is not None and validator is not None:
                self._progress(f"Checking {self.model.total():,} rows…")
                await self.checker.store_loaded(await check, validator)
        finally:
            self._set_busy("")
        note = load_note(table, prepared, append=append, replaced=len(old.rows), source=source)
        if self.checker.validator is None:
            note += "; choose a template to check them"
        # How long a big paste took to show is worth a word; a quick one's is noise.
        took = f" Shown after {shown_after:.1f} s." if shown_after >= 1 else ""
        self._say(f"{note}.{took}")
        self._sync_controls()
        self.loaded.emit(len(rows))

    # -- the keyboard --------------------------------------------------------------------------

    def apply_current_fix(self) -> bool:
        """Ctrl+.: the suggested fix of the problem chosen in the list (when the list has the
        focus) or of the current cell."""
        if self.panel.list.hasFocus():
            entry = self.panel.current_entry()
            if entry is None or entry.problem.fix is None:
                self._say("This problem has no suggested fix; change the cell by hand.")
                return False
            return self.editor.apply_fix(entry.row_id, entry.problem)
        current = self.view.currentIndex()
        if not current.isValid():
            self._say("Choose a cell with a problem first.")
            return False
        row = self.model.row_at(current.row())
        problems = self.model.problems_at(row, current.column())
        fixable = [p for p in problems if p.fix is not None]
        if not fixable:
            self._say(
                "This cell has no suggested fix."
                if problems
                else "This cell has no problem to fix."
            )
            return False
        return self.editor.apply_fix(row.id, fixable[0])

    def apply_all_fixes(self) -> None:
        if self._busy:
            self._say(f"Wait a moment: {self._busy}")
            return
        self.editor.apply_all_fixes(self.problems.entries())

    def toggle_problems(self) -> None:
        """F6: from the table to the problem list (its first problem, or the current cell's)
        and back."""
        lst = self.panel.list
        if lst.hasFocus():
            self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)
            return
        if not self.problems.rowCount():
            self._say("There are no problems to go to.")
            return
        if not lst.currentIndex().isValid():
            position = 0
            current = self.view.currentIndex()
            if current.isValid():
                row_id = self.model.row_at(current.row()).id
                found = [i for i, e in enumerate(self.problems.entries()) if e.row_id == row_id]
                position = found[0] if found else 0
            lst.setCurrentIndex(self.problems.index(position))
        lst.setFocus(Qt.FocusReason.ShortcutFocusReason)
        lst.scrollTo(lst.currentIndex())

    def _go_to_problem(self, entry: ProblemEntry) -> None:
        """Return on a problem: its cell becomes current and the table takes the focus."""
        self.editor.show_problem(entry)
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def choose_field(self) -> None:
        """Alt+Down: open the drop-down of the current column's field."""
        current = self.view.currentIndex()
        column = current.column() if current.isValid() else 0
        if not self.header.open_field(column):
            self._say("Paste or open rows first; then choose each column's field.")

    def _table_focus(self) -> None:
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def _changed_by_person(self, _index: int = 0) -> None:
        """An edit, paste, undo or redo: what the status line said about the last change is
        out of date (a step that says something says it after this)."""
        if not self._busy:
            self.footer.say("")

    # -- dropping files ------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if files_in(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        if files_in(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        self.handle_drop(event.mimeData())
        event.acceptProposedAction()

    def handle_drop(self, mime: QMimeData) -> bool:
        """Open the first lead file in ``mime`` (the window may forward its own drops here)."""
        paths = files_in(mime)
        if not paths:
            self._say("Drop a CSV, TSV, TXT or XLSX file to open it.", error=True)
            return False
        if len(paths) > 1:
            self._say(f"Opening {paths[0].name}; drop the other files one at a time.")
        self.open_file(paths[0])
        return True

    def _context_menu(self, point: QPoint) -> None:
        index = self.view.indexAt(point)
        menu = QMenu(self)
        if index.isValid():
            row = self.model.row_at(index.row())
            for problem in self.model.problems_at(row, index.column()):
                if problem.fix is not None:
                    act = menu.addAction(f"Fix: {problem.fix.label}")
                    act.triggered.connect(
                        lambda _c=False, r=row.id, p=problem: self.editor.apply_fix(r, p)
                    )
        menu.addAction("Copy", self.editor.copy_selection)
        menu.addAction(self.grid_actions.paste)
        menu.addSeparator()
        menu.addAction(self.grid_actions.fix_all)
        menu.addAction(self.grid_actions.field)
        menu.addAction(self.grid_actions.remove)
        menu.popup(self.view.viewport().mapToGlobal(point))

    # -- mapping and header --------------------------------------------------------------------

    def _mapping_picked(self, column: int, target: str | None) -> None:
        if self._busy:
            self.header.set_mapping(self.model.mapping)
            self._say(f"Wait a moment: {self._busy}")
            return
        mapping = remap(self.model.mapping, column, target, self._layout or default_layout())
        if mapping is None:
            return
        title = self.model.titles[column]
        text = f"Send “{title}” as {target}" if target else f"Do not send “{title}”"
        self.undo_stack.push(MappingCommand(self.model, mapping, text, self._mapping_changed))

    def _mapping_changed(self, mapping: list[str | None]) -> None:
        self.header.set_mapping(mapping)
        self.problems.refresh_text()
        header = self.model.header
        key = mapping_key(header if header is not None else self.model.titles, header is not None)
        self._saved[key] = list(mapping)
        self.mapping_saved.emit(key, list(mapping))

    def _header_toggled(self, on: bool) -> None:
        model = self.model
        if self._busy or (model.header is not None) == on or not model.total():
            self._sync_controls()
            return
        state = model.state()
        if on:
            new = header_read(state, self._layout or default_layout(), self._saved)
            text = "Read the first row as the header"
        else:
            first = min((r.source_row for r in state.rows), default=2)
            row = model.new_rows([state.header or []], self._source, max(first - 1, 1))[0]
            new = header_as_row(state, row)
            text = "Read the header as a row"
        self.undo_stack.push(ResetCommand(model, new, text))

    def _filter_toggled(self, on: bool) -> None:
        self.model.set_filter(on)
        self._sync_controls()

    # -- checking ------------------------------------------------------------------------------

    def _structure_changed(self) -> None:
        self.checker.restructured()
        self.header.set_mapping(self.model.mapping)
        self.problems.refresh_text()
        self.checker.schedule(0, refilter=True)
        self._sync_controls()

    def _cells_edited(self, row_ids: list[int]) -> None:
        self.checker.edited(row_ids)
        self._sync_controls()

    # -- queueing ------------------------------------------------------------------------------

    def request_queue(self) -> None:
        """The "Queue N leads" button: a summary first, then the valid rows go to the queue."""
        if not self._target_ready:
            self._say("Choose a template, campaign and allocation above first.", error=True)
            return
        if self.checking or self._busy or self._asking:
            self._say("The rows are still being checked; try again in a moment.")
            return
        clean, warned, blocked, _unchecked = self.model.summary()
        count = clean + warned
        if not count:
            self._say("No row is ready yet: fix the problems marked in red first.", error=True)
            return
        if self.delivered_lookup is None:
            self._ask(clean, warned, blocked, [])
            return
        self._asking = True
        self.tasks.spawn(self._look_then_ask(self.delivered_lookup), name="earlier deliveries")

    async def _look_then_ask(
        self, lookup: Callable[[list[dict[str, str]]], dict[int, float | None]]
    ) -> None:
        """Which ready rows were delivered to this target before: read, so the person decides
        before anything is queued (the queue checks again as it stores the rows)."""
        try:
            leads = await self.tasks.in_worker(grid_leads, self._ready_rows())
            found = await self.tasks.in_worker(lookup, [lead.fields for lead in leads])
        except Exception as exc:
            log.exception("looking up earlier deliveries failed")
            self._say(f"The queue could not be read: {exc}", error=True)
            return
        finally:
            self._asking = False
        clean, warned, blocked, _unchecked = self.model.summary()
        self._ask(clean, warned, blocked, list(found.values()))

    def _ask(self, clean: int, warned: int, blocked: int, delivered: list[float | None]) -> None:
        box = queue_summary(self, clean, warned, blocked, delivered)
        accept = box.findChild(QPushButton, "confirmQueue")
        again = box.findChild(QPushButton, "sendAgain")
        nothing_new = len(delivered) >= clean + warned

        def clicked(button: object) -> None:
            if button is again:
                self._queue_confirmed(send_again=True)
            elif button is accept and delivered and nothing_new:
                self.summary_dialog = None
                self._say(f"Nothing queued: all {len(delivered):,} rows were delivered before.")
            elif button is accept:
                self._queue_confirmed()

        box.buttonClicked.connect(clicked)
        self.summary_dialog = box
        box.open()
        self.summary_opened.emit()

    def _ready_rows(self) -> list[GridRow]:
        return [
            r
            for r in self.model.all_rows()
            if not r.queueing and r.check is not None and r.check.ok and r.current
        ]

    def _queue_confirmed(self, *, send_again: bool = False) -> None:
        self.summary_dialog = None
        if self._pending or self.checking or self._busy:
            self._say("The rows changed; press Queue again.")
            return
        ready = self._ready_rows()
        if not ready:
            return
        ids = [r.id for r in ready]
        self._pending.update(ids)
        self.model.set_queueing(ids, True)
        self._sync_controls()
        self.tasks.spawn(self._hand_over(ready, send_again), name="queue grid rows")

    async def _hand_over(self, rows: list[GridRow], send_again: bool) -> None:
        leads = await self.tasks.in_worker(grid_leads, rows)
        self._say(f"Queueing {len(leads):,} leads…")
        self.queue_requested.emit(leads, self._source or "Pasted rows", send_again)

    # -- display -------------------------------------------------------------------------------

    def _set_busy(self, text: str) -> None:
        was = bool(self._busy)
        self._busy = text
        if text:
            self.footer.show_step(text, plain=True)
        if was != bool(text):
            self._sync_controls()

    def _progress(self, text: str) -> None:
        """A new step of the running load: only the status line changes."""
        self._busy = text
        self.footer.show_step(text)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.footer.say(text, error=error)
        self.status_changed.emit(text)

    def _sync_controls(self) -> None:
        model = self.model
        busy = bool(self._busy)
        has_rows = model.total() > 0
        summary = model.summary()
        self.footer.update_counts(
            summary,
            total=model.total(),
            checked=self.checker.validator is not None,
            pending=len(self._pending),
            checking=self.checking,
            ready=self._target_ready,
            busy=busy,
        )
        self.panel.update_counts(busy=busy)
        self.toolbar.update_state(
            has_rows=has_rows,
            busy=busy,
            pending=bool(self._pending),
            header=model.header is not None,
            filtered=model.filtered,
            marked=summary[1] + summary[2],
        )
        self.grid_actions.open.setEnabled(not busy)
        self.grid_actions.paste.setEnabled(not busy)
        self.header.setEnabled(not busy)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers if busy else EDITING)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self.model.set_dark(self.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        super().changeEvent(event)

    def showEvent(self, event: Any) -> None:
        self.model.set_dark(self.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        super().showEvent(event)
