"""The grid and `send` map the same headings to the same fields: one table, both paths."""

from __future__ import annotations

import pytest

from noojee_desk import send
from noojee_desk.core.leads.layouts import FieldLayout, layout_from_pbx
from noojee_desk.core.leads.paste import prepare_table
from noojee_desk.core.leads.table import Table
from noojee_desk.sim.data import TEMPLATES


def _pbx_layout(template_id: int) -> FieldLayout:
    template = next(t for t in TEMPLATES if t["id"] == template_id)
    return layout_from_pbx(
        (f["name"], f.get("label", f["name"]), f.get("required", False)) for f in template["fields"]
    )


# (template, headings, the fields they must go to)
CASES = [
    (
        15,
        ["First Name", "Last Name", "Mobile", "Suburb"],
        ["name_first", "name_last", "phone", "suburb"],
    ),
    (
        15,
        ["name_first", "PHONE", "Post code", "E-mail"],
        ["name_first", "phone", "postcode", "email"],
    ),
    (3, ["Name", "Mobile", "Home Ph", "City"], ["Name", "FirstPhone", "SecondPhone", "City"]),
    (
        3,
        ["Full name", "Tel", "Cell", "Postcode"],
        ["Name", "FirstPhone", "SecondPhone", "PostCode"],
    ),
    (
        18,
        ["Full Name", "Contact A", "Referrer Phone"],
        ["full_name", "contact_a", "referrer_phone"],
    ),
    (18, ["Name", "Mobile"], ["full_name", "referrer_phone"]),  # the guess a person must check
]


@pytest.mark.parametrize(("template", "headings", "expected"), CASES)
def test_grid_and_send_map_headings_alike(
    template: int, headings: list[str], expected: list[str]
) -> None:
    layout = _pbx_layout(template)
    sample = [["Ann", "0412000001", "0412000002", "x"][: len(headings)]]
    grid = prepare_table(Table([headings, *sample]), layout, {}, 1, "test")
    has_header, mapping, _, _ = send.map_columns(headings, sample, layout, {}, [], None)
    assert has_header
    assert list(grid.mapping) == list(mapping.targets) == expected
