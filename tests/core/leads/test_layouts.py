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
    FieldSpec,
    default_layout,
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
            FieldSpec("Name", required=True, max_length=80),
            FieldSpec("Mobile", phone=True),
            FieldSpec("Notes", max_length=1000),
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
        FieldSpec("Name"),
        FieldSpec("Mobile"),
        FieldSpec("Tel", phone=True),
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
