"""The rows of the batch grid as a Qt table model: source columns, a field for each, checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from noojee_desk.core.leads.paste import (
    GridRow,
    GridState,
    RowKind,
    build_rows,
    column_title,
    problem_text,
    row_kind,
    row_label,
)
from noojee_desk.core.leads.validate import ERROR, WARNING, LeadCheck, Problem
from noojee_desk.ui.grid.marks import FixRole, RowIdRole, SeverityRole, severity_icon
from noojee_desk.ui.itemdata import AnyIndex, fill_roles
from noojee_desk.ui.theme import MUTED, TINTED_TEXT, TINTS


class BatchModel(QAbstractTableModel):
    """The rows of the grid: source columns, a target field per column, a check per row.

    Changes made by the person go through undo commands (see ``SetCellsCommand`` and friends),
    which call the mutators below; the mutators emit ``cells_edited`` (re-check these rows) or
    ``structure_changed`` (re-check everything).
    """

    cells_edited = Signal(list)  # row ids whose cells changed
    structure_changed = Signal()  # rows added or removed, mapping or header changed
    checks_changed = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._titles: list[str] = []
        self._header: list[str] | None = None
        self._mapping: list[str | None] = []
        self._field_columns: dict[str, list[int]] = {}
        self._mapping_id = 0
        self._rows: list[GridRow] = []
        self._shown: list[GridRow] = self._rows
        self._filtered = False
        self._positions: dict[int, int] | None = None  # row id -> index in _shown
        self._all_positions: dict[int, int] | None = None  # row id -> index in _rows
        self._gone: set[int] = set()  # queued rows: never to come back through undo
        self._next_id = 1
        self._widest = 0  # the highest row number shown (never lowered by removals)
        self._kinds = [0] * len(RowKind)  # rows per ``row_kind``, kept up to date by the mutators
        self.dark = False
        #: Called with (changes, label) for edits from the view; the grid pushes an undo command.
        self.edit_handler: Callable[[list[tuple[int, int, str, str]], str], None] | None = None

    # -- reading -----------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._shown)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._titles)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._shown[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return row.cell(column)
        if role == Qt.ItemDataRole.BackgroundRole:
            background = self.cell_colours(row, column)[0]
            return QBrush(QColor(background)) if background is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            problems = self._marks(row).get(column)
            if not problems:
                return None
            return "\n\n".join(problem_text(p) for p in problems)
        if role == Qt.ItemDataRole.ForegroundRole:
            foreground = self.cell_colours(row, column)[1]
            return QBrush(QColor(foreground)) if foreground is not None else None
        if role == SeverityRole:
            return self._cell_severity(row, column)
        if role == Qt.ItemDataRole.DecorationRole:
            severity = self._cell_severity(row, column)
            return severity_icon(severity) if severity is not None else None
        if role == Qt.ItemDataRole.AccessibleDescriptionRole:
            problems = self._marks(row).get(column)
            if not problems:
                return None
            return "; ".join(f"{p.severity.capitalize()}: {p.message}" for p in problems)
        if role == RowIdRole:
            return row.id
        if role == FixRole:
            for problem in self._marks(row).get(column, ()):
                if problem.fix is not None:
                    return problem.fix
            return None
        return None

    def multiData(self, index: AnyIndex, roleDataSpan: Any) -> None:
        """All roles of a cell in one call: a view paints a cell with one call into Python."""
        fill_roles(self, index, roleDataSpan)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if not 0 <= section < len(self._titles):
                return None
            if role == Qt.ItemDataRole.DisplayRole:
                return self._titles[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                target = self._mapping_at(section)
                source = self._titles[section]
                if target is None:
                    return f"“{source}” is not sent (no field chosen)"
                return f"“{source}” is sent as {target}"
            if role == Qt.ItemDataRole.ForegroundRole and self._mapping_at(section) is None:
                return QBrush(QColor(MUTED))
            return None
        if not 0 <= section < len(self._shown):
            return None
        row = self._shown[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(row.source_row)
        if role == Qt.ItemDataRole.DecorationRole:
            severity = row.severity
            return severity_icon(severity) if severity is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            summary = self.row_summary(row)
            return row_label(row) + (f"\n\n{summary}" if summary else "")
        if role == SeverityRole:
            return row.severity
        if role == RowIdRole:
            return row.id
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self._shown[index.row()].queueing:
            return base
        return base | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """Edits from the view go through an undo command when a stack is attached."""
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        row = self._shown[index.row()]
        if row.queueing:
            return False
        text = "" if value is None else str(value)
        old = row.cell(index.column())
        if text == old:
            return False
        if self.edit_handler is not None:
            self.edit_handler([(row.id, index.column(), old, text)], "Edit cell")
        else:
            self.set_cells([(row.id, index.column(), text)])
        return True

    # -- problems per cell -------------------------------------------------------------------

    def cell_colours(self, row: GridRow, column: int) -> tuple[str | None, str | None]:
        """(background, text colour) of a cell; None: the palette's."""
        severity = self._cell_severity(row, column)
        background = TINTS[severity][1 if self.dark else 0] if severity is not None else None
        if row.queueing or self._mapping_at(column) is None:
            return background, MUTED
        if severity is not None:
            return background, TINTED_TEXT[1 if self.dark else 0]
        return None, None

    def is_mapped(self, column: int) -> bool:
        return self._mapping_at(column) is not None

    def _mapping_at(self, column: int) -> str | None:
        return self._mapping[column] if column < len(self._mapping) else None

    def _marks(self, row: GridRow) -> dict[int, list[Problem]]:
        if row.marks_for != self._mapping_id:
            cells: dict[int, list[Problem]] = {}
            rest: list[Problem] = []
            if row.check is not None:
                for problem in row.check.problems:
                    columns = self._field_columns.get(problem.field) if problem.field else None
                    if not columns:
                        rest.append(problem)
                        continue
                    for column in columns:
                        cells.setdefault(column, []).append(problem)
            row.cell_problems = cells
            row.row_problems = rest
            row.marks_for = self._mapping_id
        return row.cell_problems

    def problems_at(self, row: GridRow, column: int) -> list[Problem]:
        """The problems marked on one cell of ``row``."""
        return list(self._marks(row).get(column, ()))

    def cell_severity(self, row: GridRow, column: int) -> str | None:
        """The worst problem marked on one cell of ``row`` (None: no problem)."""
        return self._cell_severity(row, column)

    def _cell_severity(self, row: GridRow, column: int) -> str | None:
        if row.check is None or not row.check.problems:
            return None
        problems = self._marks(row).get(column)
        if not problems:
            return None
        return ERROR if any(p.severity == ERROR for p in problems) else WARNING

    def column_of(self, field_name: str | None) -> int | None:
        """The first column mapped to ``field_name``, if any."""
        columns = self._field_columns.get(field_name) if field_name else None
        return columns[0] if columns else None

    def columns_of(self, field_name: str | None) -> list[int]:
        """Every column mapped to ``field_name`` (several are joined with a space)."""
        return list(self._field_columns.get(field_name, ())) if field_name else []

    def row_problems(self, row: GridRow) -> list[Problem]:
        """Problems of ``row`` not tied to a mapped column (no phone, a required field missing)."""
        self._marks(row)
        return row.row_problems

    def row_summary(self, row: GridRow) -> str | None:
        if row.queueing:
            return "Being queued…"
        if row.check is None:
            return None
        problems = row.check.problems
        if not problems:
            return "Ready to queue"
        return "\n\n".join(problem_text(p) for p in problems)

    # -- access by id ------------------------------------------------------------------------

    @property
    def titles(self) -> list[str]:
        return list(self._titles)

    @property
    def header(self) -> list[str] | None:
        return list(self._header) if self._header is not None else None

    @property
    def mapping(self) -> list[str | None]:
        return list(self._mapping)

    @property
    def filtered(self) -> bool:
        return self._filtered

    def all_rows(self) -> list[GridRow]:
        """Every row in grid order (a copy of the list; the rows themselves are shared)."""
        return list(self._rows)

    def total(self) -> int:
        return len(self._rows)

    def row_at(self, position: int) -> GridRow:
        """The row shown at ``position``."""
        return self._shown[position]

    def row_by_id(self, row_id: int) -> GridRow | None:
        position = self._all_position(row_id)
        return self._rows[position] if position >= 0 else None

    def position(self, row_id: int) -> int:
        """Where the row is shown, or -1 (not in the grid, or hidden by the filter)."""
        if self._positions is None:
            self._positions = {row.id: i for i, row in enumerate(self._shown)}
        return self._positions.get(row_id, -1)

    def _all_position(self, row_id: int) -> int:
        if self._all_positions is None:
            self._all_positions = {row.id: i for i, row in enumerate(self._rows)}
        return self._all_positions.get(row_id, -1)

    def widest_number(self) -> int:
        """The highest row number the grid has shown since it was last loaded."""
        return self._widest

    def _widen(self, numbers: Iterable[int]) -> None:
        self._widest = max(self._widest, max(numbers, default=0))

    def row_number(self, row_id: int) -> int:
        """The row number shown for ``row_id``: its row in the paste or file (0: not here)."""
        row = self.row_by_id(row_id)
        return row.source_row if row is not None else 0

    def grid_number(self, row_id: int) -> int:
        """The 1-based row number shown for ``row_id`` (its place in the unfiltered grid)."""
        return self._all_position(row_id) + 1

    def index_of(self, row_id: int, column: int = 0) -> QModelIndex:
        position = self.position(row_id)
        if position < 0:
            return QModelIndex()
        return self.index(position, column)

    def state(self) -> GridState:
        """A snapshot for undo (lists are copied, rows shared)."""
        return GridState(self.titles, self.header, self.mapping, list(self._rows))

    def new_rows(
        self, tables: Sequence[Sequence[str]], source: str, first: int = 1
    ) -> list[GridRow]:
        """Rows with fresh ids for cell lists."""
        return build_rows(tables, self.reserve_ids(len(tables)), source, first)

    def reserve_ids(self, count: int) -> int:
        """``count`` fresh row ids; returns the first (call on the UI thread)."""
        first = self._next_id
        self._next_id += count
        return first

    def summary(self) -> tuple[int, int, int, int]:
        """(ready without problems, ready with warnings, blocked by errors, not checked yet)."""
        kinds = self._kinds
        return (
            kinds[RowKind.CLEAN],
            kinds[RowKind.WARNED],
            kinds[RowKind.BLOCKED],
            kinds[RowKind.UNCHECKED],
        )

    def _count(self, rows: Iterable[GridRow], sign: int) -> None:
        kinds = self._kinds
        for row in rows:
            kinds[row_kind(row)] += sign

    # -- mutators (called by undo commands and loaders) --------------------------------------

    def _changed_structure(self) -> None:
        self._positions = None
        self._all_positions = None

    def load(self, state: GridState) -> None:
        """Replace everything (rows already queued never come back)."""
        self.beginResetModel()
        self._titles = list(state.titles)
        self._header = list(state.header) if state.header is not None else None
        self._rows = [r for r in state.rows if r.id not in self._gone]
        self._widest = max((r.source_row for r in self._rows), default=0)
        for row in self._rows:
            row.queueing = False
        self._kinds = [0] * len(RowKind)
        self._count(self._rows, 1)
        self._set_mapping(list(state.mapping))
        self._shown = self._problem_rows() if self._filtered else self._rows
        self._changed_structure()
        self.endResetModel()
        self.structure_changed.emit()

    def _set_mapping(self, mapping: list[str | None]) -> None:
        mapping = (mapping + [None] * len(self._titles))[: len(self._titles)]
        self._mapping = mapping
        self._field_columns = {}
        for column, name in enumerate(mapping):
            if name is not None:
                self._field_columns.setdefault(name, []).append(column)
        self._mapping_id += 1

    def set_mapping(self, mapping: Sequence[str | None]) -> None:
        self._set_mapping(list(mapping))
        if self._titles:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self._titles) - 1)
        self._all_data_changed()
        self.structure_changed.emit()

    def ensure_columns(self, count: int) -> None:
        """Widen the grid to at least ``count`` columns (new ones map to nothing)."""
        have = len(self._titles)
        if count <= have:
            return
        self.beginInsertColumns(QModelIndex(), have, count - 1)
        self._titles.extend(column_title(c) for c in range(have, count))
        self._set_mapping(self._mapping)
        if self._header is not None:
            self._header.extend("" for _ in range(have, count))
        self.endInsertColumns()

    def append_rows(self, rows: Sequence[GridRow], *, announce: bool = True) -> None:
        """Add rows at the end (in chunks when loading a big paste)."""
        rows = [r for r in rows if r.id not in self._gone]
        if not rows:
            return
        width = max(len(r.cells) for r in rows)
        self.ensure_columns(width)
        self._count(rows, 1)
        self._widen(r.source_row for r in rows)
        start = len(self._shown)
        if self._filtered:
            shown = [r for r in rows if r.check is None or r.check.problems]
            self._rows.extend(rows)
            if shown:
                self.beginInsertRows(QModelIndex(), start, start + len(shown) - 1)
                self._shown.extend(shown)
                self._changed_structure()
                self.endInsertRows()
            self._changed_structure()
        else:
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self._rows.extend(rows)
            self._changed_structure()
            self.endInsertRows()
        if announce:
            self.structure_changed.emit()

    def insert_rows(self, placed: Sequence[tuple[int, GridRow]]) -> None:
        """Put rows back at their positions (ascending); used by undo."""
        placed = [(p, r) for p, r in placed if r.id not in self._gone]
        if not placed:
            return
        width = max(len(r.cells) for _, r in placed)
        self.ensure_columns(width)
        for _, row in placed:
            row.queueing = False
        self._count((r for _, r in placed), 1)
        self._widen(r.source_row for _, r in placed)
        if self._filtered or len(placed) > 64:
            self.beginResetModel()
            for position, row in placed:
                row.queueing = False
                self._rows.insert(min(position, len(self._rows)), row)
            self._shown = self._problem_rows() if self._filtered else self._rows
            self._changed_structure()
            self.endResetModel()
        else:
            for position, row in placed:
                row.queueing = False
                position = min(position, len(self._rows))
                self.beginInsertRows(QModelIndex(), position, position)
                self._rows.insert(position, row)
                self._changed_structure()
                self.endInsertRows()
        self.structure_changed.emit()

    def remove_rows(
        self, row_ids: Iterable[int], *, gone: bool = False
    ) -> list[tuple[int, GridRow]]:
        """Take rows out; returns (position, row) ascending, to put them back on undo.

        ``gone`` marks them queued: no undo brings them back into the grid.
        """
        wanted = set(row_ids)
        if gone:
            self._gone |= wanted
        placed = [(i, r) for i, r in enumerate(self._rows) if r.id in wanted]
        if not placed:
            return []
        self._count((r for _, r in placed), -1)
        shown_positions = [i for i, r in enumerate(self._shown) if r.id in wanted]
        ranges = _ranges(shown_positions)
        if len(ranges) > 32:
            self.beginResetModel()
            self._rows[:] = [r for r in self._rows if r.id not in wanted]
            if self._filtered:
                self._shown = [r for r in self._shown if r.id not in wanted]
            self._changed_structure()
            self.endResetModel()
        else:
            if self._filtered:
                self._rows[:] = [r for r in self._rows if r.id not in wanted]
            for first, last in reversed(ranges):
                self.beginRemoveRows(QModelIndex(), first, last)
                del self._shown[first : last + 1]
                self._changed_structure()
                self.endRemoveRows()
            if not ranges and not self._filtered:
                self._rows[:] = [r for r in self._rows if r.id not in wanted]
            self._changed_structure()
        self.structure_changed.emit()
        return placed

    def set_cells(self, changes: Iterable[tuple[int, int, str]]) -> list[int]:
        """Set cells (row id, column, text); returns the ids of rows that changed.

        A row gets a new list of cells, then a new version: a check running in a worker thread
        reads a row's version before its cells, so a check of old cells always carries an old
        version and is thrown away.
        """
        touched: dict[int, tuple[GridRow, list[str]]] = {}
        columns: list[int] = []
        for row_id, column, text in changes:
            entry = touched.get(row_id)
            if entry is None:
                row = self.row_by_id(row_id)
                if row is None or row.queueing:
                    continue
                entry = touched[row_id] = (row, list(row.cells))
            cells = entry[1]
            if column >= len(cells):
                cells.extend("" for _ in range(column + 1 - len(cells)))
            cells[column] = text
            columns.append(column)
        if not touched:
            return []
        self.ensure_columns(max(columns) + 1)
        for row, cells in touched.values():
            row.cells = cells
            row.version += 1
        self._rows_data_changed(row for row, _ in touched.values())
        ids = list(touched)
        self.cells_edited.emit(ids)
        return ids

    def set_checks(
        self,
        checks: Iterable[tuple[int, int, LeadCheck]],
        *,
        refilter: bool,
        announce: bool = True,
        near: int = 0,
    ) -> int:
        """Store checks (row id, version checked, result); stale versions are ignored.

        ``near``: where the first row probably is. A check of the whole grid comes back in the
        grid's order, so each row is looked for right after the previous one; the index of
        every row by id is built only when a row was moved or removed meanwhile.
        """
        applied = 0
        kinds = self._kinds
        rows = self._rows
        count = len(rows)
        position = near - 1
        for row_id, version, check in checks:
            position += 1
            if position >= count or rows[position].id != row_id:
                if self._all_positions is None:
                    self._all_positions = {row.id: i for i, row in enumerate(rows)}
                found = self._all_positions.get(row_id)
                if found is None:
                    position -= 1
                    continue
                position = found
            row = rows[position]
            if row.version != version:
                continue
            kinds[row_kind(row)] -= 1
            row.check = check
            row.checked_version = version
            row.marks_for = -1
            kinds[row_kind(row)] += 1
            applied += 1
        if announce:
            self.checks_applied(refilter=refilter)
        return applied

    def checks_applied(self, *, refilter: bool) -> None:
        """Tell views that checks changed (after one or more ``set_checks(announce=False)``)."""
        if refilter and self._filtered:
            self.set_filter(True)
        else:
            self._all_data_changed()
        self.checks_changed.emit()

    def set_row_check(self, row_id: int, version: int, check: LeadCheck) -> None:
        row = self.row_by_id(row_id)
        if row is None or row.version != version:
            return
        self._kinds[row_kind(row)] -= 1
        row.check = check
        row.checked_version = version
        row.marks_for = -1
        self._kinds[row_kind(row)] += 1
        self._rows_data_changed([row])
        self.checks_changed.emit()

    def set_queueing(self, row_ids: Iterable[int], queueing: bool) -> None:
        rows = [r for r in (self.row_by_id(i) for i in row_ids) if r is not None]
        self._count(rows, -1)
        for row in rows:
            row.queueing = queueing
        self._count(rows, 1)
        if len(rows) > 64:
            self._all_data_changed()
        else:
            self._rows_data_changed(rows)
        self.checks_changed.emit()

    def set_filter(self, on: bool) -> None:
        """Show only rows with problems (and rows not checked yet), or all rows."""
        self.beginResetModel()
        self._filtered = on
        self._shown = self._problem_rows() if on else self._rows
        self._positions = None
        self.endResetModel()

    def _problem_rows(self) -> list[GridRow]:
        return [r for r in self._rows if r.check is None or r.check.problems]

    def set_dark(self, dark: bool) -> None:
        if dark != self.dark:
            self.dark = dark
            self._all_data_changed()

    def _rows_data_changed(self, rows: Iterable[GridRow]) -> None:
        last = max(len(self._titles) - 1, 0)
        for row in rows:
            position = self.position(row.id)
            if position >= 0:
                self.dataChanged.emit(self.index(position, 0), self.index(position, last))
                self.headerDataChanged.emit(Qt.Orientation.Vertical, position, position)

    def _all_data_changed(self) -> None:
        if self._shown and self._titles:
            last_row = len(self._shown) - 1
            self.dataChanged.emit(self.index(0, 0), self.index(last_row, len(self._titles) - 1))
            self.headerDataChanged.emit(Qt.Orientation.Vertical, 0, last_row)


def _ranges(positions: Sequence[int]) -> list[tuple[int, int]]:
    """Ascending positions as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for position in positions:
        if runs and runs[-1][1] == position - 1:
            runs[-1] = (runs[-1][0], position)
        else:
            runs.append((position, position))
    return runs
