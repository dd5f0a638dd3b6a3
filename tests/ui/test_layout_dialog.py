"""The layout dialog gives back what it was given, plus the person's changes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from noojee_desk.core.leads.layouts import (
    FieldKind,
    FieldLayout,
    Origin,
    field_spec,
    layout_from_pbx,
)
from noojee_desk.ui.layout_dialog import COL_KEY, COL_LABEL, COL_PHONE, LayoutDialog


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
    dialog.table.item(1, COL_PHONE).setCheckState(Qt.CheckState.Checked)  # name_first: now a phone
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
    dialog.table.item(0, COL_KEY).setText("given_name")
    spec = dialog.layout().fields[0]
    assert (spec.name, spec.max_length, spec.label) == ("given_name", 40, "")
    dialog.close()


def test_a_renamed_field_shows_its_new_key_unless_a_label_was_written(qapp: QApplication) -> None:
    layout = FieldLayout((field_spec("name_first"), field_spec("name_last")))
    dialog = LayoutDialog(layout, "Super Health Check")
    assert dialog.table.item(0, COL_LABEL).text() == "Name first"
    dialog.table.item(0, COL_KEY).setText("given_name")
    assert dialog.table.item(0, COL_LABEL).text() == "Given name"
    dialog.table.item(1, COL_LABEL).setText("Family name")
    dialog.table.item(1, COL_KEY).setText("surname")
    assert dialog.table.item(1, COL_LABEL).text() == "Family name"  # the person's own text
    first, second = dialog.layout().fields
    assert (first.name, first.label, first.title) == ("given_name", "", "Given name")
    assert (second.name, second.label) == ("surname", "Family name")
    dialog.close()


def test_the_pbx_fields_show_their_labels_and_stay_the_pbx_s_once_saved(
    qapp: QApplication,
) -> None:
    learnt = layout_from_pbx(
        [("full_name", "Full Name", True), ("contact_a", "Contact A", False),
         ("referrer_phone", "Referrer Phone", False)]
    )  # fmt: skip
    assert not learnt.confirmed
    dialog = LayoutDialog(learnt, "Partner Referrals")
    assert "PBX gave these fields" in dialog.intro.text()
    labels = [dialog.table.item(r, COL_LABEL).text() for r in range(3)]
    assert labels == ["Full Name", "Contact A", "Referrer Phone"]
    assert dialog.table.item(2, COL_PHONE).checkState() == Qt.CheckState.Checked  # the guess
    dialog.table.item(1, COL_PHONE).setCheckState(Qt.CheckState.Checked)
    dialog.table.item(2, COL_PHONE).setCheckState(Qt.CheckState.Unchecked)
    saved = dialog.layout()
    assert (saved.origin, saved.confirmed) == (Origin.PBX, True)
    assert saved.phone_fields == ("contact_a",)
    assert [f.label for f in saved.fields] == ["Full Name", "Contact A", "Referrer Phone"]
    # Asked again, the PBX's same keys keep the person's choice and need no second look.
    again = layout_from_pbx(
        [("full_name", "Full Name", True), ("contact_a", "Contact A", False),
         ("referrer_phone", "Referrer Phone", False)],
        saved,
    )  # fmt: skip
    assert again.confirmed
    assert again.phone_fields == ("contact_a",)
    dialog.table.item(0, COL_KEY).setText("their_name")  # a key of the person's own
    assert dialog.layout().origin is Origin.PERSON
    dialog.close()


def test_fields_listed_by_hand_say_so(qapp: QApplication) -> None:
    dialog = LayoutDialog(FieldLayout((field_spec("Name"), field_spec("Mobile"))), "Home Loans")
    assert "listed by hand" in dialog.intro.text()
    assert dialog.layout().origin is Origin.PERSON
    dialog.close()
