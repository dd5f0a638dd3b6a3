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
    Origin,
    default_layout,
    field_spec,
    layout_from_header,
    readable_label,
)
from noojee_desk.ui.grid.clipboard import clipboard_formats

#: The table's columns.
COL_KEY, COL_LABEL, COL_PHONE, COL_REQUIRED = range(4)

PBX_INTRO = (
    "The PBX gave these fields, but not which of them the dialler calls. Fields named like "
    "a phone number are ticked as a guess: tick the fields the dialler calls (at least one) "
    "and untick the others. The key is what is sent; “Shown as” is how the field reads here."
)
BY_HAND_INTRO = (
    "The fields are listed by hand: the PBX did not describe this template. List them as "
    "they are named in the template (the column headings it was created with), and tick the "
    "phone fields the dialler calls. At least one phone field is needed."
)


class LayoutDialog(QDialog):
    """The template's fields as a table; the result is ``layout()`` after ``accepted``.

    Saving confirms the phone fields. A layout read from the PBX stays one while its keys are
    the PBX's (a person's own keys make it a hand-made layout)."""

    def __init__(self, layout: FieldLayout, template_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("layoutDialog")
        self.setWindowTitle(f"Fields of {template_name}")
        self.resize(620, 500)
        self._given = layout
        self.intro = QLabel(PBX_INTRO if layout.origin is Origin.PBX else BY_HAND_INTRO)
        self.intro.setObjectName("layoutIntro")
        self.intro.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("layoutTable")
        self.table.setAccessibleName("Template fields")
        self.table.setAccessibleDescription(
            "One row per field: its key (what is sent), how it is shown, whether it is a phone "
            "number and whether it is required"
        )
        self.table.setHorizontalHeaderLabels(["Field key", "Shown as", "Phone", "Required"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_KEY, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_LABEL, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.itemChanged.connect(self._item_changed)
        add = QPushButton("&Add field")
        remove = QPushButton("&Remove")
        up = QPushButton("Move &up")
        down = QPushButton("Move &down")
        from_header = QPushButton("Take names from the copied &header row")
        from_header.setObjectName("layoutFromClipboard")
        from_header.setToolTip("Copy the header row of your spreadsheet first")
        reset = QPushButton("Reset to default")
        reset.setToolTip("The documented sample fields instead of these")
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
        outer.addWidget(self.intro)
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
        self.table.blockSignals(True)
        self.table.insertRow(row)
        name = QTableWidgetItem(spec.name)
        name.setData(Qt.ItemDataRole.UserRole, spec)  # what the table shows no column for
        name.setToolTip("The key sent to the PBX")
        self.table.setItem(row, COL_KEY, name)
        label = QTableWidgetItem(spec.title)
        label.setToolTip("How the field is named in the form and the grid")
        self.table.setItem(row, COL_LABEL, label)
        for column, on in ((COL_PHONE, spec.phone), (COL_REQUIRED, spec.required)):
            item = QTableWidgetItem()
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.table.setItem(row, column, item)
        self.table.blockSignals(False)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        """A renamed key: its "Shown as" follows unless a person wrote one of their own."""
        if item.column() != COL_KEY:
            return
        label = self.table.item(item.row(), COL_LABEL)
        before = item.data(Qt.ItemDataRole.UserRole)
        shown = before.title if isinstance(before, FieldSpec) else ""
        if label is not None and label.text() in ("", shown):
            self.table.blockSignals(True)
            label.setText(readable_label(" ".join(item.text().split())))
            self.table.blockSignals(False)

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
            name_item = self.table.item(row, COL_KEY)
            name = " ".join((name_item.text() if name_item else "").split())
            if not name:
                continue
            phone, required = self._checked(row, COL_PHONE), self._checked(row, COL_REQUIRED)
            known = name_item.data(Qt.ItemDataRole.UserRole) if name_item else None
            kept = known if isinstance(known, FieldSpec) else field_spec(name)
            specs.append(
                field_spec(
                    name,
                    phone=phone,
                    required=required,
                    max_length=kept.max_length,
                    label=self._label(row, name, kept),
                )
            )
        return specs

    def _label(self, row: int, name: str, kept: FieldSpec) -> str:
        """The label to keep: the one given while its key and "Shown as" are unchanged, the
        person's own text, or none when it only repeats the key."""
        item = self.table.item(row, COL_LABEL)
        text = " ".join((item.text() if item else "").split())
        if kept.name == name and text == kept.title:
            return kept.label
        if not text or text == readable_label(name):
            return ""
        return text

    def _checked(self, row: int, column: int) -> bool:
        item = self.table.item(row, column)
        return item is not None and item.checkState() == Qt.CheckState.Checked

    def layout(self) -> FieldLayout:  # type: ignore[override]
        """The fields as listed, confirmed; still the PBX's while the keys are its own."""
        specs = tuple(self._specs())
        same_keys = [s.name.casefold() for s in specs] == [
            f.name.casefold() for f in self._given.fields
        ]
        origin = self._given.origin if same_keys else Origin.PERSON
        if origin is Origin.DEFAULT:
            origin = Origin.PERSON  # saved by a person: no longer the assumed sample fields
        return FieldLayout(specs, origin, confirmed=True)

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
