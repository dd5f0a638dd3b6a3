"""Validation: every rule with a lead that passes and one that fails, the repairs, the batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from noojee_desk.core.leads import validate
from noojee_desk.core.leads.layouts import FieldLayout, default_layout, field_spec
from noojee_desk.core.leads.validate import (
    ERROR,
    WARNING,
    Fix,
    LeadCheck,
    Problem,
    ValidationSettings,
    Validator,
    clean_text,
)

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


def _validator(
    layout: FieldLayout | None = None,
    settings: ValidationSettings | None = None,
    recent: dict[str, str] | None = None,
) -> Validator:
    recent_phones = (
        (lambda numbers: {n: recent[n] for n in numbers if n in recent}) if recent else None
    )
    return Validator(layout or default_layout(), settings, recent_phones, clock=lambda: NOW)


def _one(fields: dict[str, str], **kwargs: object) -> LeadCheck:
    return _validator(**kwargs).validate_rows([fields])[0]  # type: ignore[arg-type]


def _only(check: LeadCheck) -> Problem:
    assert len(check.problems) == 1, check.problems
    return check.problems[0]


def test_a_good_lead() -> None:
    check = _one({"Name": "Jane Smith", "FirstPhone": "(03) 8321 8199", "City": ""})
    assert check.ok
    assert check.problems == []
    assert check.fields == {"Name": "Jane Smith", "FirstPhone": "0383218199"}  # empty left out
    assert check.phones == frozenset({"+61383218199"})
    assert check.numbers == {"FirstPhone": "+61383218199"}
    assert check.row == 1


# --- phones --------------------------------------------------------------------------------------


def test_no_phone_is_an_error() -> None:
    check = _one({"Name": "Jane", "FirstPhone": " ", "SecondPhone": ""})
    problem = _only(check)
    assert not check.ok
    assert (problem.field, problem.severity) == ("FirstPhone", ERROR)
    assert "no phone number" in problem.message
    assert "102" in problem.message


def test_no_phone_field_in_the_layout() -> None:
    layout = FieldLayout((field_spec("Name"),))
    problem = _only(_one({"Name": "Jane"}, layout=layout))
    assert problem.field is None
    assert "no phone field" in problem.message


def test_the_second_phone_is_enough() -> None:
    assert _one({"FirstPhone": "", "SecondPhone": "0412 345 678"}).ok


def test_a_bad_number_beside_a_good_one_can_be_cleared() -> None:
    check = _one({"FirstPhone": "0412 345 678", "SecondPhone": "12345"})
    problem = _only(check)
    assert not check.ok
    assert (problem.field, problem.severity) == ("SecondPhone", ERROR)
    assert problem.fix == Fix("Leave it empty", "")
    assert check.fields["SecondPhone"] == "12345"  # kept as typed, never lost


def test_a_bad_number_alone_has_no_clear_fix() -> None:
    problem = _only(_one({"FirstPhone": "12345"}))
    assert problem.severity == ERROR
    assert problem.fix is None


def test_lost_leading_zero_is_a_warning_with_a_fix() -> None:
    check = _one({"FirstPhone": "412345678"})
    problem = _only(check)
    assert check.ok
    assert (problem.field, problem.severity) == ("FirstPhone", WARNING)
    assert problem.fix == Fix("Add the leading 0", "0412345678")
    assert check.fields["FirstPhone"] == "0412345678"


def test_scientific_notation_blocks_the_lead() -> None:
    check = _one({"FirstPhone": "4.12E+08"})
    problem = _only(check)
    assert not check.ok
    assert "scientific notation" in problem.message


def test_sixty_one_without_plus_passes() -> None:
    check = _one({"FirstPhone": "61412345678"})
    assert check.ok
    assert check.problems == []
    assert check.fields["FirstPhone"] == "0412345678"


def test_send_format_is_a_setting() -> None:
    settings = ValidationSettings(phone_format="e164")
    assert _one({"FirstPhone": "0412 345 678"}, settings=settings).fields["FirstPhone"] == (
        "+61412345678"
    )
    nz = ValidationSettings(region="NZ")
    assert _one({"FirstPhone": "021 123 4567"}, settings=nz).fields["FirstPhone"] == "0211234567"


def test_duplicates_in_the_batch_name_the_other_row() -> None:
    checks = _validator().validate_rows(
        [
            {"FirstPhone": "0412 345 678"},
            {"FirstPhone": "0398 765 432"},
            {"FirstPhone": "0400 000 000", "SecondPhone": "+61 412 345 678"},
            {"FirstPhone": "03 9876 5432", "SecondPhone": "0398765432"},
        ],
        first_row=2,
    )
    assert [c.row for c in checks] == [2, 3, 4, 5]
    assert checks[0].problems == []
    assert checks[1].problems == []
    problem = _only(checks[2])
    assert (problem.row, problem.field, problem.severity) == (4, "SecondPhone", WARNING)
    assert "row 2 (FirstPhone)" in problem.message
    assert "105" in problem.message
    # The same number twice in one lead is one lead, not a duplicate: one warning for row 3.
    problem = _only(checks[3])
    assert "row 3 (FirstPhone)" in problem.message


def test_recently_delivered_numbers_are_a_warning() -> None:
    calls: list[set[str]] = []

    def recent(numbers: Iterable[str]) -> dict[str, str]:
        numbers = set(numbers)
        calls.append(numbers)
        return {"+61412345678": "delivered 3 days ago"} if "+61412345678" in numbers else {}

    validator = Validator(default_layout(), recent_phones=recent, clock=lambda: NOW)
    checks = validator.validate_rows(
        [{"FirstPhone": "0412 345 678"}, {"FirstPhone": "0412 345 679"}]
    )
    assert calls == [{"+61412345678", "+61412345679"}]  # one question for the whole batch
    problem = _only(checks[0])
    assert problem.severity == WARNING
    assert "delivered 3 days ago" in problem.message
    assert checks[1].problems == []


def test_a_failing_history_does_not_stop_the_check() -> None:
    def broken(numbers: Iterable[str]) -> dict[str, str]:
        raise RuntimeError("database is locked")

    validator = Validator(default_layout(), recent_phones=broken, clock=lambda: NOW)
    assert validator.validate_rows([{"FirstPhone": "0412 345 678"}])[0].ok


def test_validate_one_warns_about_numbers_already_queued() -> None:
    validator = _validator(recent={"+61383218199": "delivered today"})
    check = validator.validate_one(
        {"FirstPhone": "0412 345 678", "SecondPhone": "03 8321 8199"},
        other_phones={"+61412345678": "row 4 of this batch"},
    )
    assert check.ok
    assert [(p.field, p.severity) for p in check.problems] == [
        ("FirstPhone", WARNING),
        ("SecondPhone", WARNING),
    ]
    assert "row 4 of this batch" in check.problems[0].message
    assert "delivered today" in check.problems[1].message
    plain = validator.validate_one({"FirstPhone": "0412 345 678"}, other_phones=["+61412345678"])
    assert "already waiting" in _only(plain).message
    assert validator.validate_one({"FirstPhone": "0412 345 678"}).problems == []


# --- other fields --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["<NO CHANGE>", "<No Change>", " <no change> "])
def test_no_change_is_an_error_in_any_field(value: str) -> None:
    check = _one({"Name": value, "FirstPhone": "0412 345 678"})
    problem = _only(check)
    assert not check.ok
    assert (problem.field, problem.severity) == ("Name", ERROR)
    assert "108" in problem.message
    assert problem.fix == Fix("Leave it empty", "")
    assert "Name" not in check.fields


def test_no_change_in_a_phone_field() -> None:
    check = _one({"FirstPhone": "<NO CHANGE>", "SecondPhone": "0412 345 678"})
    assert [p.field for p in check.problems] == ["FirstPhone"]


def test_text_that_only_looks_like_no_change_is_fine() -> None:
    assert _one({"Name": "<NO CHANGE> please", "FirstPhone": "0412 345 678"}).ok


@pytest.mark.parametrize(
    ("value", "sent"), [("5", "5"), ("05", "5"), ("5.0", "5"), ("0", "0"), ("100", "100")]
)
def test_priority_whole_number_0_to_100(value: str, sent: str) -> None:
    check = _one({"FirstPhone": "0412 345 678", "njPriority": value})
    assert check.ok
    assert check.fields["njPriority"] == sent


@pytest.mark.parametrize(
    ("value", "fix"),
    [("101", Fix("Use 100", "100")), ("5.6", Fix("Use 6", "6")), ("urgent", None), ("-1", None)],
)
def test_priority_errors(value: str, fix: Fix | None) -> None:
    problem = _only(_one({"FirstPhone": "0412 345 678", "njPriority": value}))
    assert (problem.field, problem.severity) == ("njPriority", ERROR)
    assert "0 (most urgent) to 100" in problem.message
    assert problem.fix == fix


def test_callback_date_is_sent_in_the_pbx_format() -> None:
    check = _one({"FirstPhone": "0412 345 678", "njCallBackDate": "25/12/2026 9:30am"})
    assert check.ok
    assert check.fields["njCallBackDate"] == "2026/12/25 09:30"


def test_callback_date_in_the_past_is_a_warning() -> None:
    check = _one({"FirstPhone": "0412 345 678", "njCallBackDate": "1/1/2026 9:00"})
    problem = _only(check)
    assert check.ok
    assert (problem.field, problem.severity) == ("njCallBackDate", WARNING)


def test_unreadable_callback_date_is_an_error() -> None:
    check = _one({"FirstPhone": "0412 345 678", "njCallBackDate": "soon"})
    problem = _only(check)
    assert not check.ok
    assert problem.field == "njCallBackDate"
    assert check.fields["njCallBackDate"] == "soon"


def test_callback_day_first_and_zone_are_settings() -> None:
    settings = ValidationSettings(day_first=False, timezone="Australia/Perth")
    check = _one(
        {"FirstPhone": "0412 345 678", "njCallBackDate": "2026-12-25T09:30:00Z"}, settings=settings
    )
    assert check.fields["njCallBackDate"] == "2026/12/25 17:30"
    check = _one({"FirstPhone": "0412 345 678", "njCallBackDate": "07/08/2026"}, settings=settings)
    assert check.fields["njCallBackDate"] == "2026/07/08 00:00"


def test_required_fields() -> None:
    layout = FieldLayout((field_spec("Name", required=True), field_spec("Mobile", phone=True)))
    problem = _only(_one({"Name": "  ", "Mobile": "0412 345 678"}, layout=layout))
    assert (problem.field, problem.severity) == ("Name", ERROR)
    assert "required" in problem.message
    assert _one({"Name": "Jane", "Mobile": "0412 345 678"}, layout=layout).ok


def test_white_space_and_control_characters() -> None:
    check = _one(
        {
            "Name": "  Jane\x00 Smith\u200b ",
            "StreetAddress": "Suite 8\r\n10 Hoddle St",
            "City": "Abbots\u00adford\t",
            "FirstPhone": " 0412 345 678\u00a0",
        }
    )
    assert check.ok
    assert check.fields == {
        "Name": "Jane Smith",
        "StreetAddress": "Suite 8 10 Hoddle St",
        "City": "Abbotsford",
        "FirstPhone": "0412345678",
    }


def test_clean_text() -> None:
    assert clean_text("a\tb") == "a b"
    assert clean_text("\ufeffJane") == "Jane"
    assert clean_text("plain") == "plain"


def test_length_limit_per_field() -> None:
    layout = FieldLayout((field_spec("Name", max_length=5), field_spec("Tel", phone=True)))
    check = _one({"Name": "Jane Smith", "Tel": "0412 345 678"}, layout=layout)
    problem = _only(check)
    assert (problem.field, problem.severity) == ("Name", ERROR)
    assert problem.fix == Fix("Cut to 5 characters", "Jane")
    assert _one({"Name": "Jane", "Tel": "0412 345 678"}, layout=layout).ok


def test_length_limit_of_system_fields_is_a_setting() -> None:
    settings = ValidationSettings(max_length=10)
    problem = _only(
        _one({"FirstPhone": "0412 345 678", "njContactHours": "x" * 11}, settings=settings)
    )
    assert problem.field == "njContactHours"


def test_external_ids_must_differ_within_the_batch() -> None:
    checks = _validator().validate_rows(
        [
            {"FirstPhone": "0412 345 678", "njExternalLeadId": "A-1"},
            {"FirstPhone": "0412 345 679", "njExternalLeadId": "A-2"},
            {"FirstPhone": "0412 345 670", "njExternalLeadId": "A-1"},
        ]
    )
    assert checks[0].ok
    assert checks[1].ok
    problem = _only(checks[2])
    assert (problem.field, problem.severity) == ("njExternalLeadId", ERROR)
    assert "row 1" in problem.message
    assert "112" in problem.message


def test_a_big_batch_is_checked_in_slices_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        {"Name": f"Lead {i}", "FirstPhone": f"04{12_345_000 + i % 7:08d}", "njExternalLeadId": ""}
        for i in range(23)
    ]
    rows[20]["njExternalLeadId"] = rows[3]["njExternalLeadId"] = "X-1"
    rows[9]["Notes"] = "a field of its own"
    whole = _validator().validate_rows(rows, first_row=2)
    monkeypatch.setattr(validate, "CHECK_SLICE", 4)
    sliced = _validator().validate_rows(rows, first_row=2)
    assert sliced == whole
    assert [c.row for c in sliced] == list(range(2, 25))
    assert "row 2 (FirstPhone)" in _only(sliced[7]).message  # found in an earlier slice
    assert any("row 5" in p.message for p in sliced[20].problems)  # the id, 4 slices back


def test_field_not_in_the_layout_is_a_warning() -> None:
    check = _one({"FirstPhone": "0412 345 678", "Colour": "blue"})
    problem = _only(check)
    assert check.ok
    assert (problem.field, problem.severity) == ("Colour", WARNING)
    assert check.fields["Colour"] == "blue"


def test_rows_with_different_fields_and_odd_values() -> None:
    checks = _validator().validate_rows(
        [
            {"FirstPhone": "0412 345 678"},
            {"Name": None, "SecondPhone": 412345679},  # type: ignore[dict-item]
            {},
        ]
    )
    assert checks[0].ok
    assert checks[1].fields == {"SecondPhone": "0412345679"}
    assert not checks[2].ok


def test_empty_batch() -> None:
    assert _validator().validate_rows([]) == []


def test_validation_settings_from_stored_data() -> None:
    settings = ValidationSettings(region="NZ", phone_format="e164", day_first=False)
    assert ValidationSettings.from_dict(settings.to_dict()) == settings
    assert ValidationSettings.from_dict("junk") == ValidationSettings()
    repaired = ValidationSettings.from_dict(
        {"phone_format": "fax", "recent_days": -4, "max_length": "x", "day_first": "no"}
    )
    assert repaired == ValidationSettings()


def test_bad_settings_do_not_break_the_validator() -> None:
    settings = ValidationSettings(region="??", timezone="Mars/Olympus", phone_format="fax")
    validator = Validator(default_layout(), settings, clock=lambda: NOW)
    check = validator.validate_rows([{"FirstPhone": "+61 412 345 678"}])[0]
    assert check.ok
    assert check.fields["FirstPhone"] == "+61412345678"


def test_numbers_outside_known_ranges_warn_unless_the_profile_blocks_them() -> None:
    from noojee_desk.core.profiles.settings import Profile, Settings

    lead = {"Name": "Ben", "FirstPhone": "0443 464 097"}
    lenient = _one(lead)
    assert lenient.ok
    assert [(p.field, p.severity) for p in lenient.problems] == [("FirstPhone", WARNING)]
    assert "may not exist" in lenient.problems[0].message
    assert lenient.fields["FirstPhone"] == "0443464097"
    assert lenient.numbers == {"FirstPhone": "+61443464097"}

    settings = Settings()
    strict_settings = ValidationSettings.of(settings, Profile("site", strict_ranges=True))
    assert strict_settings.strict_ranges is True
    assert ValidationSettings.of(settings, Profile("other")).strict_ranges is False
    assert ValidationSettings.of(settings, None).strict_ranges is False
    strict = _one(lead, settings=strict_settings)
    assert not strict.ok
    assert [(p.field, p.severity) for p in strict.problems] == [("FirstPhone", ERROR)]
    assert "do not match any number range" in strict.problems[0].message
    assert strict.numbers == {}
    # The rule is stored with the other checking rules.
    assert ValidationSettings.from_dict(strict_settings.to_dict()) == strict_settings
    assert ValidationSettings.from_dict({"strict_ranges": "yes"}).strict_ranges is False


def test_field_names_are_cleaned_like_values_and_can_be_stored(tmp_path) -> None:
    from noojee_desk.core.delivery.outbox import Outbox
    from noojee_desk.core.delivery.records import LeadInput, Target

    check = _one(
        {
            "Na\ud800me": "Jane",
            "FirstPhone": "0383218199",
            "\u200b": "invisible",
            "City\x00": "Perth",
            "City": "",
        }
    )
    assert check.fields == {"Name": "Jane", "FirstPhone": "0383218199", "City": "Perth"}
    assert all(name.isprintable() for name in check.fields)
    box = Outbox(tmp_path / "outbox.sqlite3")
    try:
        box.enqueue(
            "p",
            Target(3, 42, 101),
            [LeadInput(check.fields, check.phones, check.row)],
            allow_duplicates=False,
            source="paste",
        )
        (lead,) = box.leads()
    finally:
        box.close()
    assert lead.fields == check.fields
