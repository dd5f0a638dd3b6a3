"""Changes a person makes in the batch grid's cells and rows, each one step on the undo stack."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QObject
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QAbstractItemView, QApplication, QTableView

from noojee_desk.core.leads.paste import GridState, ProblemEntry, next_source_row
from noojee_desk.core.leads.table import Table
from noojee_desk.core.leads.text_tables import to_tsv
from noojee_desk.core.leads.validate import Problem
from noojee_desk.ui.grid.controls import counted
from noojee_desk.ui.grid.model import BatchModel
from noojee_desk.ui.grid.undo import (
    AddRowsCommand,
    RemoveRowsCommand,
    ResetCommand,
    SetCellsCommand,
)

#: A cell change: (row id, column, old text, new text).
Change = tuple[int, int, str, str]


class GridEditor(QObject):
    """Edits, pastes into a selection, copies, fixes, removals and clearing.

    ``busy()``: what a running load does ("" when none: nothing else may change the grid
    then); ``pending()``: rows are being queued; ``source()``: where the rows came from;
    ``say(text, error)``: a message on the status line.
    """

    def __init__(
        self,
        model: BatchModel,
        view: QTableView,
        undo_stack: QUndoStack,
        *,
        busy: Callable[[], str],
        pending: Callable[[], bool],
        source: Callable[[], str],
        say: Callable[..., None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._view = view
        self._undo = undo_stack
        self._busy = busy
        self._pending = pending
        self._source = source
        self._say = say
        model.edit_handler = self.push_edit

    def push_edit(self, changes: list[Change], text: str) -> None:
        """Cell changes as one undo step (none while a load runs)."""
        changes = [c for c in changes if c[2] != c[3]]
        if not changes:
            return
        if self._busy():
            self._say(f"Wait a moment: {self._busy()}")
            return
        self._undo.push(SetCellsCommand(self._model, changes, text))

    def selected_cells(self) -> list[QModelIndex]:
        return sorted(
            self._view.selectionModel().selectedIndexes(), key=lambda i: (i.row(), i.column())
        )

    def copy_selection(self) -> None:
        cells = self.selected_cells()
        if not cells:
            return
        rows = sorted({i.row() for i in cells})
        cols = sorted({i.column() for i in cells})
        chosen = {(i.row(), i.column()) for i in cells}
        block = [
            [self._model.row_at(r).cell(c) if (r, c) in chosen else "" for c in cols] for r in rows
        ]
        # setText, not setMimeData: a QMimeData made in Python and owned by the clipboard
        # would be destroyed by Qt after Python has shut down, crashing the exit.
        QApplication.clipboard().setText(to_tsv(block))

    def clear_selected_cells(self) -> None:
        changes = []
        for index in self.selected_cells():
            row = self._model.row_at(index.row())
            if not row.queueing:
                changes.append((row.id, index.column(), row.cell(index.column()), ""))
        self.push_edit(changes, f"Clear {len(changes):,} cells")

    def remove_selected_rows(self) -> None:
        model = self._model
        positions = sorted({i.row() for i in self._view.selectionModel().selectedIndexes()})
        ids = [model.row_at(p).id for p in positions if not model.row_at(p).queueing]
        if not ids or self._busy():
            return
        self._undo.push(RemoveRowsCommand(model, ids, f"Remove {counted(len(ids), 'row')}"))
        self._say(f"Removed {counted(len(ids), 'row')} (Undo brings them back).")

    def clear(self) -> None:
        """Empty the grid (undoable)."""
        if self._busy() or not self._model.total():
            return
        if self._pending():
            self._say("Wait until the leads being queued are stored.", error=True)
            return
        count = self._model.total()
        self._undo.push(ResetCommand(self._model, GridState(), "Clear grid"))
        self._say(f"Cleared {counted(count, 'row')} (Undo brings them back).")

    # -- fixes ---------------------------------------------------------------------------------

    def apply_fix(self, row_id: int, problem: Problem) -> bool:
        """Put a problem's suggested value into its cell (one undo step)."""
        model = self._model
        fix = problem.fix
        column = model.column_of(problem.field)
        row = model.row_by_id(row_id)
        if fix is None or row is None:
            return False
        if column is None:
            self._say(
                f"Map a column to {problem.field} first; then the fix can go into it.", error=True
            )
            return False
        if len(model.columns_of(problem.field)) > 1:
            self._say(
                f"{problem.field} is made of several columns; change them by hand.", error=True
            )
            return False
        self.push_edit([(row_id, column, row.cell(column), fix.value)], f"Fix: {fix.label}")
        return True

    def apply_all_fixes(self, entries: Iterable[ProblemEntry]) -> None:
        """Every suggested fix of ``entries``, as one undo step."""
        model = self._model
        changes: list[Change] = []
        seen: set[tuple[int, int]] = set()
        for entry in entries:
            fix = entry.problem.fix
            column = model.column_of(entry.problem.field)
            row = model.row_by_id(entry.row_id)
            if fix is None or column is None or row is None or row.queueing:
                continue
            if len(model.columns_of(entry.problem.field)) > 1:
                continue
            if (row.id, column) in seen:
                continue
            seen.add((row.id, column))
            changes.append((row.id, column, row.cell(column), fix.value))
        if not changes:
            self._say("There are no suggested fixes to apply.")
            return
        self.push_edit(changes, f"Apply {len(changes):,} suggested fixes")
        self._say(f"Applied {len(changes):,} suggested fixes (Undo takes them back).")

    def show_problem(self, entry: ProblemEntry) -> None:
        """Select and show the cell of a problem (its row's first cell when no column has it)."""
        column = self._model.column_of(entry.problem.field)
        target = self._model.index_of(entry.row_id, column if column is not None else 0)
        if not target.isValid():
            return
        view = self._view
        view.setCurrentIndex(target)
        view.selectionModel().select(target, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        view.scrollTo(target, QAbstractItemView.ScrollHint.PositionAtCenter)

    # -- a paste into the selected cells -------------------------------------------------------

    def paste_into_selection(self, table: Table, selected: list[QModelIndex]) -> None:
        """Spreadsheet paste: the block lands at the top-left selected cell; one value fills all."""
        block = table.rows
        model = self._model
        changes: list[Change] = []
        columns = model.columnCount()
        if len(block) == 1 and len(block[0]) == 1 and len(selected) > 1:
            value = block[0][0]
            for index in selected:
                row = model.row_at(index.row())
                if not row.queueing:
                    changes.append((row.id, index.column(), row.cell(index.column()), value))
            self.push_edit(changes, f"Paste into {len(changes):,} cells")
            return
        top = min(i.row() for i in selected)
        left = min(i.column() for i in selected)
        dropped = 0
        new_cells: list[list[str]] = []
        for offset, cells in enumerate(block):
            position = top + offset
            fitting = cells[: max(columns - left, 0)]
            dropped += len(cells) - len(fitting)
            if position < model.rowCount():
                row = model.row_at(position)
                if row.queueing:
                    continue
                for c, value in enumerate(fitting):
                    changes.append((row.id, left + c, row.cell(left + c), value))
            else:
                new_cells.append([""] * left + list(fitting))
        if new_cells:
            first = next_source_row(model.all_rows())
            rows = model.new_rows(new_cells, self._source() or "Pasted", first)
            for row in rows:
                row.cells += [""] * (columns - len(row.cells))
            self._undo.push(
                AddRowsCommand(model, rows, f"Paste {len(block):,} rows", cells=changes)
            )
        elif changes:
            self.push_edit(changes, f"Paste {len(block):,}×{max(len(r) for r in block)} cells")
        note = f"Pasted {sum(len(r) for r in block):,} cells"
        if new_cells:
            note += f", {len(new_cells):,} new rows"
        if dropped:
            note += f"; {dropped:,} cells beyond the last column were left out"
        self._say(note + ".")
