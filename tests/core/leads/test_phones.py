"""Phone numbers: what people and spreadsheets write, the repairs, and the format sent."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from noojee_desk.core.leads.phones import PhoneNormaliser, country_name, e164_of, normalise


@pytest.mark.parametrize(
    "raw",
    [
        "0383218199",
        "(03) 8321 8199",
        "03 8321 8199",
        "+61 3 8321 8199",
        "61383218199",
        " 03-8321-8199 ",
    ],
)
def test_one_number_many_writings(raw: str) -> None:
    result = normalise(raw)
    assert result.e164 == "+61383218199"
    assert result.formatted == "0383218199"  # national digits, as in the reference sample
    assert result.severity is None
    assert result.fix is None


def test_national_format_of_numbers_without_a_trunk_prefix() -> None:
    assert normalise("1300 123 456").formatted == "1300123456"
    assert normalise("13 12 34").formatted == "131234"
    assert normalise("0412 345 678").formatted == "0412345678"


@pytest.mark.parametrize(
    ("phone_format", "sent"),
    [("national", "0412345678"), ("e164", "+61412345678"), ("international", "+61 412 345 678")],
)
def test_send_formats(phone_format: str, sent: str) -> None:
    assert normalise("0412 345 678", "AU", phone_format).formatted == sent


def test_leading_zero_lost_in_a_spreadsheet_gets_a_fix() -> None:
    result = normalise("412345678")
    assert result.e164 == "+61412345678"
    assert result.formatted == "0412345678"
    assert result.severity == "warning"
    assert "leading 0" in (result.problem or "")
    assert result.fix == "0412345678"
    assert result.fix_label == "Add the leading 0"
    assert normalise("383218199").fix == "0383218199"


def test_sixty_one_without_plus_is_international() -> None:
    result = normalise("61412345678")
    assert result.e164 == "+61412345678"
    assert result.severity is None


@pytest.mark.parametrize("raw", ["4.12E+08", "4.12e+8", "3.83E+09", "4,12E+08"])
def test_scientific_notation_is_an_error(raw: str) -> None:
    result = normalise(raw)
    assert result.e164 is None
    assert result.severity == "error"
    assert "scientific notation" in (result.problem or "")
    assert "Text" in (result.problem or "")
    assert result.fix is None  # the digits are gone: nothing to offer


def test_number_stored_as_a_decimal() -> None:
    result = normalise("412345678.0")
    assert result.e164 == "+61412345678"
    assert result.severity == "warning"
    assert result.fix == "0412345678"
    kept = normalise("0412345678.0")
    assert kept.e164 == "+61412345678"
    assert kept.fix == "0412345678"
    assert kept.fix_label == "Remove the decimals"


def test_two_numbers_in_one_cell() -> None:
    result = normalise("0412 345 678 / 03 9876 5432")
    assert result.e164 is None
    assert result.severity == "error"
    assert "more than one" in (result.problem or "")
    assert result.fix == "0412 345 678"
    assert normalise("0412 345 678 or 0398765432").fix == "0412 345 678"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("0412 345", "too few digits"),
        ("98765432", "area code"),
        ("0412 345 678 999", "too many digits"),
        ("call me", "not a phone number"),
        ("0412 345 67", "too few digits"),
        ("+999 123 456 789", "country code"),
    ],
)
def test_invalid_numbers_say_why(raw: str, words: str) -> None:
    result = normalise(raw)
    assert result.e164 is None
    assert result.severity == "error"
    assert words in (result.problem or "")


@pytest.mark.parametrize(
    ("raw", "e164", "sent"),
    [
        ("0443 464 097", "+61443464097", "0443464097"),  # a mobile range not in the plans
        ("+61 443 464 097", "+61443464097", "0443464097"),
        ("61443464097", "+61443464097", "0443464097"),
        ("0500 000 000", "+61500000000", "0500000000"),  # no national format: prefix kept
    ],
)
def test_a_possible_length_in_an_unknown_range_is_a_warning(raw: str, e164: str, sent: str) -> None:
    assert not phonenumbers.is_valid_number(phonenumbers.parse(raw, "AU"))
    result = normalise(raw)
    assert result.e164 == e164
    assert result.formatted == sent
    assert result.severity == "warning"
    assert "may not exist" in (result.problem or "")
    assert "known number plans" in (result.problem or "")
    assert f"sent as {sent}" in (result.problem or "")
    reference = PhoneNormaliser("AU", quick=False).normalise(raw)
    assert reference == result


@pytest.mark.parametrize("raw", ["0443 464 097", "+61 443 464 097", "0500 000 000"])
def test_strict_ranges_keep_unknown_ranges_an_error(raw: str) -> None:
    for quick in (True, False):
        result = PhoneNormaliser("AU", quick=quick, strict_ranges=True).normalise(raw)
        assert result.e164 is None
        assert result.formatted is None
        assert result.severity == "error"
        assert "do not match any number range of Australia" in (result.problem or "")


@pytest.mark.parametrize(
    "raw",
    ["0412 345", "0412 345 67", "98765432", "0412 345 678 999", "04123456789", "call me"],
)
def test_impossible_lengths_stay_errors_without_strict_ranges(raw: str) -> None:
    result = normalise(raw)
    assert result.e164 is None
    assert result.severity == "error"
    assert "may not exist" not in (result.problem or "")


def test_unknown_range_notes_add_up_with_the_other_notes() -> None:
    dropped = normalise("443464097")
    assert dropped.e164 == "+61443464097"
    assert dropped.fix == "0443464097"
    assert dropped.fix_label == "Add the leading 0"
    assert "may not exist" in (dropped.problem or "")
    overseas = normalise("+1 555 000 0000")
    assert overseas.formatted == "+15550000000"
    assert "may not exist" in (overseas.problem or "")
    assert "the United States" in (overseas.problem or "")  # named though its range is unknown


def test_shared_normalisers_are_kept_apart_by_the_range_rule() -> None:
    assert normalise("0443 464 097").severity == "warning"
    assert normalise("0443 464 097", strict_ranges=True).severity == "error"
    assert normalise("0443 464 097").severity == "warning"


def test_overseas_number_is_a_warning_and_sent_as_e164() -> None:
    result = normalise("+44 20 7946 0000")
    assert result.e164 == "+442079460000"
    assert result.formatted == "+442079460000"
    assert result.severity == "warning"
    assert "United Kingdom" in (result.problem or "")


def test_extension_is_dropped_with_a_warning() -> None:
    result = normalise("03 8321 8199 ext. 12")
    assert result.formatted == "0383218199"
    assert result.severity == "warning"
    assert "extension 12" in (result.problem or "")


def test_vanity_number() -> None:
    assert normalise("1300 FLOWER").e164 == "+611300356937"


def test_other_default_region() -> None:
    result = normalise("021 123 4567", "NZ")
    assert result.e164 == "+64211234567"
    assert result.formatted == "0211234567"
    # An Australian mobile read as a New Zealand number: a possible length in no known range.
    assert normalise("412345678", "NZ").severity == "warning"
    assert normalise("412345678", "NZ", strict_ranges=True).e164 is None


def test_unknown_default_region_needs_international_numbers() -> None:
    assert normalise("+61 412 345 678", "XX").e164 == "+61412345678"
    result = normalise("0412 345 678", "XX")
    assert result.e164 is None
    assert "country code" in (result.problem or "")


def test_empty() -> None:
    result = normalise("   ")
    assert result.empty
    assert result.e164 is None
    assert result.severity is None


def test_results_are_cached_by_text() -> None:
    normaliser = PhoneNormaliser("AU")
    first = normaliser.normalise("0412 345 678")
    assert normaliser.normalise("0412 345 678") is first
    assert e164_of("0412-345-678") == "+61412345678"


def test_country_names() -> None:
    assert country_name("AU") == "Australia"
    assert country_name("FR") == "France"
    assert country_name("IS") == "Iceland"  # from phonenumbers' own data
    assert country_name(None) == "an unknown country"


# --- the quick path gives phonenumbers' answers --------------------------------------------------

_PREFIXES = ["", "", "", "0", "+", "+61", "61", "0011", "+44", "+1", "+64", "+39", "00", "(0"]
_SEPARATORS = ["", "", " ", "-", ") ", ".", " / "]


@st.composite
def _writings(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(_PREFIXES))
    digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=15))
    cut = draw(st.integers(0, len(digits)))
    separator = draw(st.sampled_from(_SEPARATORS))
    tail = draw(st.sampled_from(["", "", ".0", " x12", "E+08"]))
    return prefix + digits[:cut] + separator + digits[cut:] + tail


@given(
    st.lists(_writings(), min_size=1, max_size=20),
    st.sampled_from(["AU", "NZ", "GB", "US", "IT", "CX", "DE"]),
    st.sampled_from(["national", "e164", "international"]),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_quick_path_agrees_with_phonenumbers(
    writings: list[str], region: str, phone_format: str, strict_ranges: bool
) -> None:
    quick = PhoneNormaliser(region, phone_format, strict_ranges=strict_ranges)
    assert quick._quick is not None  # else this would compare phonenumbers with itself
    reference = PhoneNormaliser(region, phone_format, quick=False, strict_ranges=strict_ranges)
    for raw in writings:
        assert quick.normalise(raw) == reference.normalise(raw), raw


@st.composite
def _possible_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A region and a national number of one of its usual lengths, valid or not."""
    region = draw(st.sampled_from(["AU", "NZ", "GB", "US", "IT", "CX", "DE"]))
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert meta is not None
    assert meta.mobile is not None
    assert meta.fixed_line is not None
    lengths = sorted({*meta.mobile.possible_length, *meta.fixed_line.possible_length} - {-1})
    length = draw(st.sampled_from(lengths))
    digits = draw(st.text(alphabet="0123456789", min_size=length, max_size=length))
    prefix = draw(st.sampled_from(["", meta.national_prefix or "", f"+{meta.country_code}"]))
    return region, prefix + digits


@given(
    st.lists(_possible_numbers(), min_size=1, max_size=20),
    st.sampled_from(["national", "e164", "international"]),
)
@settings(max_examples=200, deadline=None)
# The E.164 form of this reading, +49030000, reads back as the valid +49 30000.
@example([("DE", "+490030000")], "national")
def test_unknown_ranges_read_the_same_on_both_paths(
    numbers: list[tuple[str, str]], phone_format: str
) -> None:
    for region, raw in numbers:
        for strict in (False, True):
            quick = PhoneNormaliser(region, phone_format, strict_ranges=strict).normalise(raw)
            reference = PhoneNormaliser(
                region, phone_format, quick=False, strict_ranges=strict
            ).normalise(raw)
            assert quick == reference, (region, raw, strict)
            if quick.e164 is not None and quick.severity == "warning":
                assert quick.formatted
                parsed = phonenumbers.parse(quick.e164)
                unknown = not phonenumbers.is_valid_number(parsed)
                assert unknown == ("may not exist" in (quick.problem or ""))
                assert not (unknown and strict)


@pytest.mark.parametrize("quick", [True, False])
def test_a_zero_after_the_country_code_that_would_name_another_number_is_an_error(
    quick: bool,
) -> None:
    # phonenumbers drops one 0 as the national prefix and keeps the next: +49 030000, whose
    # E.164 text +49030000 is the valid +49 30000. Sending it would call someone else.
    result = PhoneNormaliser("DE", "national", quick=quick).normalise("+490030000")
    assert result.severity == "error"
    assert result.e164 is None
    assert "digits start with 0, which numbers of Germany never do" in (result.problem or "")
    # Without the second 0 it is that other number, and valid.
    kept = PhoneNormaliser("DE", "national", quick=quick).normalise("+49 30 000")
    assert kept.e164 == "+4930000"


def test_reference_path_is_phonenumbers() -> None:
    reference = PhoneNormaliser("AU", "national", quick=False)
    for raw in ("0412 345 678", "+61 3 8321 8199", "1300 123 456", "02 9876 5432"):
        number = phonenumbers.parse(raw, "AU")
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        assert reference.normalise(raw).formatted == national.replace(" ", "").replace(
            "(", ""
        ).replace(")", "")


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_any_text_gives_a_result(raw: str) -> None:
    result = normalise(raw)
    assert (result.e164 is None) == (result.formatted is None)
    if result.e164 is None and raw.strip():
        assert result.severity == "error"
        assert result.problem
    strict = normalise(raw, strict_ranges=True)
    if strict.e164 is not None:  # strict sends only numbers phonenumbers takes as valid
        assert strict == result
        assert phonenumbers.is_valid_number(phonenumbers.parse(strict.e164))
