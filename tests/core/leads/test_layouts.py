"""Field layouts: defaults, phone field detection, import from a header, tolerant storage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noojee_desk.core.leads import layouts
from noojee_desk.core.leads.layouts import (
    DEFAULT_FIELD_NAMES,
    SYSTEM_FIELDS,
    FieldLayout,
    default_layout,
    field_spec,
    is_phone_name,
    layout_from_header,
    layout_key,
)


def test_default_layout_is_the_documented_sample() -> None:
    layout = default_layout()
    assert layout.names == DEFAULT_FIELD_NAMES
    assert layout.phone_fields == ("FirstPhone", "SecondPhone")
    assert layout.required_fields == ()
    assert layout.mappable_names == (*DEFAULT_FIELD_NAMES, *SYSTEM_FIELDS)


def test_system_fields() -> None:
    assert SYSTEM_FIELDS == ("njExternalLeadId", "njCallBackDate", "njPriority", "njContactHours")


@pytest.mark.parametrize(
    "name",
    [
        "FirstPhone",
        "Mobile",
        "MOBILE NO",
        "Tel 2",
        "Cell",
        "phone_2",
        "Telephone Number",
        "homephone",
    ],
)
def test_phone_names(name: str) -> None:
    assert is_phone_name(name)


@pytest.mark.parametrize("name", ["Name", "Hotel", "Cellar", "PostCode", "Email", "Notes"])
def test_other_names(name: str) -> None:
    assert not is_phone_name(name)


def test_layout_from_header_marks_phone_fields_and_skips_junk() -> None:
    layout = layout_from_header(
        ["Name", " Mobile ", "", "Home Tel", "name", "njCallBackDate", "Post  Code"]
    )
    assert layout.names == ("Name", "Mobile", "Home Tel", "Post Code")
    assert layout.phone_fields == ("Mobile", "Home Tel")


def test_round_trip_through_json() -> None:
    layout = FieldLayout(
        (
            field_spec("Name", required=True, max_length=80),
            field_spec("Mobile", phone=True),
            field_spec("Notes", max_length=1000),
        )
    )
    stored = json.loads(json.dumps(layout.to_dict()))
    assert FieldLayout.from_dict(stored) == layout


@pytest.mark.parametrize(
    "junk",
    [
        None,
        "text",
        42,
        [],
        {},
        {"fields": "Name"},
        {"fields": []},
        {"fields": [None, 3, {"name": ""}, {"name": 5}]},
        {"fields": [{"name": "x" * 500}]},
    ],
)
def test_corrupt_stored_layout_gives_the_default(junk: object) -> None:
    assert FieldLayout.from_dict(junk) == default_layout()


def test_stored_layout_keeps_good_fields_and_repairs_bad_values() -> None:
    layout = FieldLayout.from_dict(
        {
            "fields": [
                {"name": "Name", "required": "yes", "max_length": -3},
                "Mobile",
                {"name": "Mobile", "phone": True},
                {"name": "njPriority"},
                {"name": "Tel", "phone": True, "max_length": True},
            ]
        }
    )
    assert layout.fields == (
        field_spec("Name"),
        field_spec("Mobile", phone=False),
        field_spec("Tel", phone=True),
    )


_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@given(_JSON_LIKE)
def test_from_dict_never_raises(data: object) -> None:
    # What the last-resort guard in FieldLayout.from_dict covers must not need it.
    items = data if isinstance(data, list) else [data]
    specs = [layouts.FieldSpec.from_dict(item) for item in items]
    assert all(spec is None or isinstance(spec, layouts.FieldSpec) for spec in specs)
    layouts.make_layout(spec for spec in specs if spec is not None)
    assert isinstance(FieldLayout.from_dict({"fields": data}), FieldLayout)
    assert isinstance(FieldLayout.from_dict(data), FieldLayout)


def test_layout_key() -> None:
    assert layout_key("https://pbx.example.com/", 7) == "https://pbx.example.com|7"


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("name_first", "Name first"),
        ("StreetAddress", "Street address"),
        ("FirstPhone", "First phone"),
        ("address_1", "Address 1"),
        ("Best_Contact_Time", "Best contact time"),
        ("Home Ph", "Home Ph"),  # already written for people
    ],
)
def test_keys_are_shown_readably(key: str, shown: str) -> None:
    assert layouts.readable_label(key) == shown
    assert field_spec(key).title == shown


def test_a_field_kind_comes_from_its_key_or_its_label_unless_said() -> None:
    assert field_spec("phone").kind is layouts.FieldKind.PHONE
    assert field_spec("contact_a", label="Mobile").kind is layouts.FieldKind.PHONE
    assert field_spec("contact_a").kind is layouts.FieldKind.TEXT
    assert field_spec("Mobile", phone=False).kind is layouts.FieldKind.TEXT
    assert field_spec("x", kind=layouts.FieldKind.PHONE).phone
    with pytest.raises(ValueError, match="not a field name"):
        field_spec("  ")


def test_kind_label_and_length_survive_the_settings_file() -> None:
    layout = FieldLayout(
        (
            field_spec("name_first", label="First name", max_length=40, required=True),
            field_spec("contact_a", label="Contact A", phone=True),
            field_spec("Notes", max_length=1000),
        )
    )
    assert FieldLayout.from_dict(layout.to_dict()) == layout
    # A file of a version without kinds: "phone" decides.
    old = {"fields": [{"name": "Mobile", "phone": False}, {"name": "x", "phone": True}]}
    assert [f.kind for f in FieldLayout.from_dict(old).fields] == [
        layouts.FieldKind.TEXT,
        layouts.FieldKind.PHONE,
    ]
