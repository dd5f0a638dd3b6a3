"""The layout dialog gives back what it was given, plus the person's changes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from noojee_desk.core.leads.layouts import FieldKind, FieldLayout, field_spec
from noojee_desk.ui.layout_dialog import LayoutDialog


def test_a_layout_comes_back_with_its_lengths_and_labels(qapp: QApplication) -> None:
    layout = FieldLayout(
        (
            field_spec("Name", max_length=50, required=True),
            field_spec("name_first", label="First name", max_length=40),
            field_spec("contact_a", label="Contact A", phone=True),
        )
    )
    dialog = LayoutDialog(layout, "Home Loans")
    assert dialog.layout() == layout
    dialog.table.item(1, 1).setCheckState(Qt.CheckState.Checked)  # name_first: now a phone
    changed = dialog.layout()
    assert changed.spec("Name") is not None
    assert changed.spec("Name").max_length == 50
    first = changed.spec("name_first")
    assert first is not None
    assert (first.kind, first.max_length, first.label) == (FieldKind.PHONE, 40, "First name")
    dialog.close()


def test_a_renamed_field_keeps_its_length_but_not_its_old_label(qapp: QApplication) -> None:
    layout = FieldLayout((field_spec("name_first", label="First name", max_length=40),))
    dialog = LayoutDialog(layout, "Home Loans")
    dialog.table.item(0, 0).setText("given_name")
    spec = dialog.layout().fields[0]
    assert (spec.name, spec.max_length, spec.label) == ("given_name", 40, "")
    dialog.close()
