"""Edit a template's field layout: names in order, which are phone fields, which are required."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from noojee_desk.core.leads.clipboard import parse_clipboard
from noojee_desk.core.leads.layouts import (
    FieldLayout,
    FieldSpec,
    default_layout,
    field_spec,
    layout_from_header,
)
from noojee_desk.ui.grid.clipboard import clipboard_formats


class LayoutDialog(QDialog):
    """The template's fields as a table; the result is ``layout()`` after ``accepted``."""

    def __init__(self, layout: FieldLayout, template_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("layoutDialog")
        self.setWindowTitle(f"Fields of {template_name}")
        self.resize(520, 480)
        intro = QLabel(
            "The PBX does not say which fields a template has. List them as they are named in the "
            "template (the column headings it was created with), and tick the phone fields the "
            "dialler calls. At least one phone field is needed."
        )
        intro.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("layoutTable")
        self.table.setHorizontalHeaderLabels(["Field name", "Phone", "Required"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        add = QPushButton("&Add field")
        remove = QPushButton("&Remove")
        up = QPushButton("Move &up")
        down = QPushButton("Move &down")
        from_header = QPushButton("Take names from the copied &header row")
        from_header.setObjectName("layoutFromClipboard")
        from_header.setToolTip("Copy the header row of your spreadsheet first")
        reset = QPushButton("Reset to default")
        add.clicked.connect(lambda: self._add(field_spec("NewField")))
        remove.clicked.connect(self._remove)
        up.clicked.connect(lambda: self._move(-1))
        down.clicked.connect(lambda: self._move(+1))
        from_header.clicked.connect(self._from_clipboard)
        reset.clicked.connect(lambda: self.set_layout(default_layout()))
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("layoutMessage")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        side = QVBoxLayout()
        for button in (add, remove, up, down):
            side.addWidget(button)
        side.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.table, 1)
        middle.addLayout(side)
        extra = QHBoxLayout()
        extra.addWidget(from_header)
        extra.addWidget(reset)
        extra.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addWidget(intro)
        outer.addLayout(middle, 1)
        outer.addLayout(extra)
        outer.addWidget(self.message)
        outer.addWidget(buttons)
        self.set_layout(layout)

    def set_layout(self, layout: FieldLayout) -> None:
        self.table.setRowCount(0)
        for spec in layout.fields:
            self._add(spec)

    def _add(self, spec: FieldSpec) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        name = QTableWidgetItem(spec.name)
        name.setData(Qt.ItemDataRole.UserRole, spec)  # what the table shows no column for
        self.table.setItem(row, 0, name)
        for column, on in ((1, spec.phone), (2, spec.required)):
            item = QTableWidgetItem()
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.table.setItem(row, column, item)

    def _remove(self) -> None:
        for row in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)

    def _move(self, step: int) -> None:
        row = self.table.currentRow()
        target = row + step
        if row < 0 or not (0 <= target < self.table.rowCount()):
            return
        specs = self._specs()
        specs[row], specs[target] = specs[target], specs[row]
        self.set_layout(FieldLayout(tuple(specs)))
        self.table.selectRow(target)

    def _from_clipboard(self) -> None:
        table = parse_clipboard(clipboard_formats(QApplication.clipboard().mimeData()))
        if not table.rows or not any(cell.strip() for cell in table.rows[0]):
            self.message.setText("The clipboard holds no table: copy the header row first.")
            return
        self.set_layout(layout_from_header(table.rows[0]))
        self.message.setText("Names taken from the copied header row; check the phone ticks.")

    def _specs(self) -> list[FieldSpec]:
        specs = []
        for row in range(self.table.rowCount()):
            name_item = self.table.item(row, 0)
            name = " ".join((name_item.text() if name_item else "").split())
            if not name:
                continue
            phone, required = self._checked(row, 1), self._checked(row, 2)
            known = name_item.data(Qt.ItemDataRole.UserRole) if name_item else None
            kept = known if isinstance(known, FieldSpec) else field_spec(name)
            specs.append(
                field_spec(
                    name,
                    phone=phone,
                    required=required,
                    max_length=kept.max_length,
                    label=kept.label if kept.name == name else "",
                )
            )
        return specs

    def _checked(self, row: int, column: int) -> bool:
        item = self.table.item(row, column)
        return item is not None and item.checkState() == Qt.CheckState.Checked

    def layout(self) -> FieldLayout:  # type: ignore[override]
        return FieldLayout(tuple(self._specs()))

    def _accept(self) -> None:
        specs = self._specs()
        names = [s.name.casefold() for s in specs]
        if not specs:
            self.message.setText("List at least one field.")
        elif len(set(names)) != len(names):
            self.message.setText("Two fields have the same name.")
        elif not any(s.phone for s in specs):
            self.message.setText("Tick at least one phone field: the PBX refuses leads without.")
        else:
            self.accept()
