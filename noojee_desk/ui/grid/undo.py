"""Undo commands of the batch grid: every change a person makes is one step on its stack."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from noojee_desk.core.leads.paste import GridRow, GridState
from noojee_desk.ui.grid.model import BatchModel


class SetCellsCommand(QUndoCommand):
    """Cell edits, fixes and pastes into a selection: (row id, column, old text, new text)."""

    def __init__(self, model: BatchModel, changes: list[tuple[int, int, str, str]], text: str):
        super().__init__(text)
        self._model = model
        self._changes = changes

    def redo(self) -> None:
        self._model.set_cells((r, c, new) for r, c, _old, new in self._changes)

    def undo(self) -> None:
        self._model.set_cells((r, c, old) for r, c, old, _new in reversed(self._changes))


class AddRowsCommand(QUndoCommand):
    """Rows added at the end (a paste that ran past the last row, or a paste into the grid).

    With ``applied`` the rows are in the model already (filled in chunks) and the first redo
    that ``QUndoStack.push`` makes does nothing.
    """

    def __init__(
        self,
        model: BatchModel,
        rows: list[GridRow],
        text: str,
        *,
        applied: bool = False,
        cells: list[tuple[int, int, str, str]] | None = None,
    ):
        super().__init__(text)
        self._model = model
        self._rows = rows
        self._placed: list[tuple[int, GridRow]] = []
        self._skip = applied
        self._cells = cells or []  # cell changes made together with the new rows

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        if self._cells:
            self._model.set_cells((r, c, new) for r, c, _old, new in self._cells)
        if self._placed:
            self._model.insert_rows(self._placed)
        else:
            self._model.append_rows(self._rows)

    def undo(self) -> None:
        self._placed = self._model.remove_rows([r.id for r in self._rows])
        if self._cells:
            self._model.set_cells((r, c, old) for r, c, old, _new in reversed(self._cells))


class RemoveRowsCommand(QUndoCommand):
    def __init__(self, model: BatchModel, row_ids: list[int], text: str):
        super().__init__(text)
        self._model = model
        self._ids = row_ids
        self._placed: list[tuple[int, GridRow]] = []

    def redo(self) -> None:
        self._placed = self._model.remove_rows(self._ids)

    def undo(self) -> None:
        self._model.insert_rows(self._placed)


class ResetCommand(QUndoCommand):
    """Replace the whole grid (a new paste or file over other rows, clear, header on/off)."""

    def __init__(
        self,
        model: BatchModel,
        new: GridState,
        text: str,
        *,
        applied: bool = False,
        old: GridState | None = None,
    ):
        super().__init__(text)
        self._model = model
        self._old = old if old is not None else model.state()
        self._new = new
        self._skip = applied

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        self._model.load(self._new)

    def undo(self) -> None:
        self._model.load(self._old)


class MappingCommand(QUndoCommand):
    """A different target field for one or more columns."""

    def __init__(
        self,
        model: BatchModel,
        new: list[str | None],
        text: str,
        on_change: Callable[[list[str | None]], None] | None = None,
    ):
        super().__init__(text)
        self._model = model
        self._old = model.mapping
        self._new = new
        self._on_change = on_change

    def _apply(self, mapping: list[str | None]) -> None:
        self._model.set_mapping(mapping)
        if self._on_change is not None:
            self._on_change(mapping)

    def redo(self) -> None:
        self._apply(self._new)

    def undo(self) -> None:
        self._apply(self._old)
