"""Phone numbers: read what people and spreadsheets write, repair spreadsheet damage, format."""

from __future__ import annotations

import functools
import re
from typing import Literal, NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers import phonenumberutil as _pnu

PHONE_FORMATS: tuple[str, ...] = ("national", "e164", "international")
DEFAULT_REGION = "AU"

#: How many distinct raw strings one normaliser remembers.
CACHE_SIZE = 200_000

# Characters people and spreadsheets put between digits; removed before the quick reading.
_SEPARATORS = str.maketrans(
    "", "", " -().\u00a0\u2009\u202f\u2010\u2011\u2012\u2013\u2014\u2212\u3000\t"
)
# Excel shows long numbers in scientific notation; once copied like this the digits are gone.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d{1,3}")
# A number stored as a decimal ("412345678.0") by a spreadsheet or an export script.
_DECIMAL_ZERO = re.compile(r"(\+?\d{6,17})[.,]0+")
# Between two numbers in one cell.
_MULTI_SPLIT = re.compile(r"\s*(?:[/,;&|\n]|\bor\b|\band\b)\s*", re.IGNORECASE)
_DIGITS_ONLY = re.compile(r"\D+")

_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


class PhoneResult(NamedTuple):
    """What one phone cell holds: the number (E.164) and the text to send, or why not."""

    raw: str
    e164: str | None = None  # the identity of the number; None when there is no usable number
    formatted: str | None = None  # the value to send to the PBX
    severity: Literal["error", "warning"] | None = None
    problem: str | None = None  # a sentence for a sales person
    fix: str | None = None  # the corrected cell value, when one can be offered
    fix_label: str = ""
    region: str | None = None  # the number's region code ("AU"), when known

    @property
    def empty(self) -> bool:
        return not self.raw.strip()

    @property
    def valid(self) -> bool:
        return self.e164 is not None


# --- the quick reading of plain digit strings --------------------------------------------------


class _RegionRules:
    """One region's parsing, validity and national-format rules, compiled once."""

    def __init__(self, meta: PhoneMetadata) -> None:
        self.meta = meta
        general = meta.general_desc
        pattern = general.national_number_pattern if general is not None else None
        self.general = re.compile(pattern) if pattern else None
        self.general_lengths = frozenset(general.possible_length) if general is not None else ()
        self.leading_digits = re.compile(meta.leading_digits) if meta.leading_digits else None
        npp = meta.national_prefix_for_parsing
        self.national_prefix_for_parsing = re.compile(npp) if npp else None
        self.transform_rule = meta.national_prefix_transform_rule or None
        # For the number type UNKNOWN, phonenumbers' length test depends on the length alone.
        self.length_result = {n: _pnu._test_number_length("0" * n, meta) for n in range(40)}
        by_length: dict[int, list[str]] = {}
        lengths = self.general_lengths or frozenset(range(1, 18))
        for attr in _TYPE_DESCS:
            desc = getattr(meta, attr, None)
            if desc is None or not desc.national_number_pattern:
                continue
            accepted = desc.possible_length
            for length in lengths:
                if not accepted or length in accepted:
                    by_length.setdefault(length, []).append(desc.national_number_pattern)
        # Valid: the general pattern and one of the number types' patterns match the whole number.
        self.valid_by_length = {
            length: re.compile(
                (f"(?=(?:{pattern})\\Z)" if pattern else "(?!)")
                + "(?:"
                + "|".join(f"(?:{p})" for p in patterns)
                + ")"
            )
            for length, patterns in by_length.items()
        }
        # The national formats as one expression: the first alternative that matches is the
        # format phonenumbers picks (leading digits as a look-ahead, then the whole pattern).
        self.formats: list[tuple[re.Pattern[str], str, str | None]] = []
        alternatives = []
        for index, fmt in enumerate(meta.number_format):
            if fmt.pattern is None or fmt.format is None:
                # phonenumbers' metadata gives every format both; without them these rules
                # cannot match phonenumbers, so the region is refused (as a failure to compile).
                raise ValueError(f"a number format of {meta.id} lacks its pattern or format")
            leading = fmt.leading_digits_pattern[-1] if fmt.leading_digits_pattern else ""
            rule = fmt.format
            np_rule = fmt.national_prefix_formatting_rule
            if np_rule:
                rule = re.sub(_pnu._FIRST_GROUP_PATTERN, np_rule, fmt.format, count=1)
            compiled = re.compile(fmt.pattern)
            self.formats.append((compiled, rule, _digit_prefix(compiled, rule)))
            ahead = f"(?=(?:{leading}))" if leading else ""
            alternatives.append(f"(?P<f{index}>{ahead}(?:{fmt.pattern})\\Z)")
        self.format_chooser = re.compile("|".join(alternatives)) if alternatives else None
        self.format_by_group = (
            {
                self.format_chooser.groupindex[f"f{index}"]: fmt
                for index, fmt in enumerate(self.formats)
            }
            if self.format_chooser is not None
            else {}
        )

    def viable(self, nsn: str) -> bool:
        return self.general is not None and self.general.fullmatch(nsn) is not None

    def strip_national_prefix(self, number: str) -> str:
        """phonenumbers' national prefix stripping (the carrier code is of no use here)."""
        npp = self.national_prefix_for_parsing
        if not number or npp is None:
            return number
        match = npp.match(number)
        if match is None:
            return number
        if self.transform_rule is not None:
            return _pnu._maybe_strip_national_prefix_carrier_code(number, self.meta)[1]
        stripped = number[match.end() :]
        if self.viable(number) and not self.viable(stripped):
            return number
        return stripped

    def has_valid_type(self, nsn: str) -> bool:
        """Equivalent to phonenumbers' number type helper returning anything but UNKNOWN."""
        valid = self.valid_by_length.get(len(nsn))
        return valid is not None and valid.fullmatch(nsn) is not None

    def national_digits(self, nsn: str) -> str:
        """The digits of phonenumbers' NATIONAL format of ``nsn``."""
        match = self.format_chooser.match(nsn) if self.format_chooser is not None else None
        if match is None:
            return nsn
        # The chooser is alternatives of one named group each: a match took part in one of them.
        assert match.lastindex is not None
        pattern, rule, prefix = self.format_by_group[match.lastindex]
        if prefix is not None:
            return prefix + nsn
        return _DIGITS_ONLY.sub("", pattern.sub(rule, nsn))


_PLAIN_GROUPS = re.compile(r"(?:\(\\d(?:\{\d+(?:,\d*)?\})?\))+")


def _digit_prefix(pattern: re.Pattern[str], rule: str) -> str | None:
    """When formatting with ``pattern`` and ``rule`` only puts digits in front of the number and
    non-digits between its groups, the digits put in front; else None (format the slow way)."""
    if not _PLAIN_GROUPS.fullmatch(pattern.pattern):
        return None
    pieces = re.split(r"\\(\d)", rule)
    literals, refs = pieces[0::2], pieces[1::2]
    if [int(r) for r in refs] != list(range(1, pattern.groups + 1)):
        return None
    if any(c.isdigit() for literal in literals[1:] for c in literal):
        return None
    return "".join(c for c in literals[0] if c.isdigit())


@functools.cache
def _rules(region: str) -> _RegionRules | None:
    meta = PhoneMetadata.metadata_for_region(region, None)
    return _RegionRules(meta) if meta is not None else None


@functools.cache
def _rules_for_code(cc: int) -> tuple[tuple[str, _RegionRules], ...]:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    found = ((region, _rules(region)) for region in regions)
    return tuple((region, rules) for region, rules in found if rules is not None)


def _fast_valid(cc: int, nsn: str) -> tuple[bool, str | None]:
    """(is valid, region of the number) as phonenumbers.is_valid_number decides it."""
    candidates = _rules_for_code(cc)
    if len(candidates) == 1:
        region, rules = candidates[0]
        return rules.has_valid_type(nsn), region
    for region, rules in candidates:
        if rules.leading_digits is not None:
            if rules.leading_digits.match(nsn):
                return rules.has_valid_type(nsn), region
        elif rules.has_valid_type(nsn):
            return True, region
    return False, None


_TOO_LONG = _pnu.ValidationResult.TOO_LONG
_SHORT_LENGTHS = (
    _pnu.ValidationResult.TOO_SHORT,
    _pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _pnu.ValidationResult.INVALID_LENGTH,
)


class _QuickReader:
    """Reads plain digit strings for one default region exactly as phonenumbers.parse does."""

    def __init__(self, region: str) -> None:
        rules = _rules(region)
        if rules is None:
            raise ValueError(region)
        self.rules = rules
        self.region = region
        cc = rules.meta.country_code
        if cc is None:  # every region's metadata has its country code
            raise ValueError(region)
        self.cc = cc
        self.cc_str = str(cc)
        idd = rules.meta.international_prefix
        self.idd = re.compile(idd) if idd else None

    def read(self, digits: str, plus: bool) -> tuple[int, str] | None:
        """(country code, national significant number), or None to use the full parser."""
        if len(digits) < 3:  # phonenumbers' viability rules for very short input differ
            return None
        rules = self.rules
        if plus:
            if len(digits) <= 2:
                return None
            cc, nsn = _pnu._extract_country_code(digits)
            if cc == 0:
                return None
            region = phonenumbers.region_code_for_country_code(cc)
            if region in ("001", "ZZ"):
                return None
            if region != self.region:
                other = _rules(region)
                if other is None:
                    return None
                rules = other
        else:
            if self.idd is not None and self.idd.match(digits):
                return None
            cc, nsn = self.cc, digits
            if digits.startswith(self.cc_str):
                rest = rules.strip_national_prefix(digits[len(self.cc_str) :])
                if (not rules.viable(digits) and rules.viable(rest)) or rules.length_result.get(
                    len(digits), _pnu.ValidationResult.TOO_LONG
                ) == _pnu.ValidationResult.TOO_LONG:
                    nsn = rest
        if len(nsn) < 2:
            return None
        stripped = rules.strip_national_prefix(nsn)
        if rules.length_result.get(len(stripped), _pnu.ValidationResult.TOO_LONG) not in (
            _SHORT_LENGTHS
        ):
            nsn = stripped
        if not 2 <= len(nsn) <= 17:
            return None
        return cc, nsn


#: The quick path leans on these phonenumbers internals; without them it stands aside.
_QUICK_PATH_AVAILABLE = all(
    hasattr(_pnu, name)
    for name in (
        "_extract_country_code",
        "_maybe_strip_national_prefix_carrier_code",
        "_test_number_length",
        "_set_italian_leading_zeros_for_phone_number",
        "_FIRST_GROUP_PATTERN",
        "ValidationResult",
    )
)


def _number(cc: int, nsn: str) -> phonenumbers.PhoneNumber:
    """A PhoneNumber for a country code and national significant number, as parse makes it."""
    numobj = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
    if nsn[:1] == "0" and len(nsn) > 1:  # as phonenumbers.parse records leading zeros
        numobj.italian_leading_zero = True
        zeros = len(nsn) - len(nsn.lstrip("0"))
        zeros = min(zeros, len(nsn) - 1)
        if zeros != 1:
            numobj.number_of_leading_zeros = zeros
    return numobj


# --- the normaliser -----------------------------------------------------------------------------


_COUNTRY_NAMES = {
    "AE": "the United Arab Emirates",
    "AU": "Australia",
    "BD": "Bangladesh",
    "BR": "Brazil",
    "CA": "Canada",
    "CC": "the Cocos (Keeling) Islands",
    "CN": "China",
    "CX": "Christmas Island",
    "DE": "Germany",
    "ES": "Spain",
    "FJ": "Fiji",
    "FR": "France",
    "GB": "the United Kingdom",
    "HK": "Hong Kong",
    "ID": "Indonesia",
    "IE": "Ireland",
    "IN": "India",
    "IT": "Italy",
    "JP": "Japan",
    "KR": "South Korea",
    "LK": "Sri Lanka",
    "MX": "Mexico",
    "MY": "Malaysia",
    "NF": "Norfolk Island",
    "NL": "the Netherlands",
    "NP": "Nepal",
    "NZ": "New Zealand",
    "PG": "Papua New Guinea",
    "PH": "the Philippines",
    "PK": "Pakistan",
    "SG": "Singapore",
    "TH": "Thailand",
    "TW": "Taiwan",
    "US": "the United States",
    "VN": "Vietnam",
    "ZA": "South Africa",
}


@functools.cache
def country_name(region: str | None) -> str:
    """An English name for a region code ("AU" -> "Australia"); the code itself when unknown."""
    if not region or region in ("ZZ", "001"):
        return "an unknown country"
    known = _COUNTRY_NAMES.get(region)
    if known is not None:
        return known
    try:  # the geocoder's data takes half a second to load: only for rare countries
        from phonenumbers.geocoder import _region_display_name

        return _region_display_name(region, "en", None, None) or region
    except Exception:
        return region


def _length_problem(numobj: phonenumbers.PhoneNumber, country: str) -> str | None:
    """Why the number of digits cannot be right, or None when the length is possible (the
    number is of a length the country's numbers have; only its range may be unknown)."""
    reason = phonenumbers.is_possible_number_with_reason(numobj)
    result = phonenumbers.ValidationResult
    cc = numobj.country_code
    region = (
        phonenumbers.region_code_for_country_code(cc)
        if cc is not None
        else phonenumbers.UNKNOWN_REGION
    )
    meta = PhoneMetadata.metadata_for_region(region, None)
    usual: set[int] = set()
    local_only = False
    if meta is not None:
        for desc in (meta.fixed_line, meta.mobile):
            if desc is not None:
                usual.update(n for n in desc.possible_length if n > 0)
                local_only = local_only or bool(desc.possible_length_local_only)
    length = len(phonenumbers.national_significant_number(numobj))
    if reason == result.TOO_LONG or (usual and length > max(usual)):
        return f"it has too many digits for {country}"
    if reason == result.IS_POSSIBLE_LOCAL_ONLY or (local_only and usual and length < min(usual)):
        return "it has too few digits, so the area code may be missing"
    if reason == result.TOO_SHORT or (usual and length < min(usual)):
        return f"it has too few digits for {country}"
    if reason == result.INVALID_LENGTH or (usual and length not in usual):
        return f"it has the wrong number of digits for {country}"
    return None


def _reads_back(cc: int, nsn: str) -> bool:
    """Whether ``+{cc}{nsn}`` reads as the same number again (a leading 0 that the country's
    numbers do not have is taken for the national prefix and dropped: another number)."""
    try:
        again = phonenumbers.parse(f"+{cc}{nsn}", None)
    except NumberParseException:
        return False
    return again.country_code == cc and phonenumbers.national_significant_number(again) == nsn


#: The note on a number of a possible length in a range the number plans do not list.
UNKNOWN_RANGE_NOTE = (
    "this number may not exist (its range is not in the known number plans); check it"
)


class PhoneNormaliser:
    """Turns phone cells into numbers to send for one default region and send format.

    Plain digit strings are read by a quick path that gives the same answers as phonenumbers
    (parse, is_valid_number, NATIONAL format) at a fraction of the cost; ``quick=False`` uses
    phonenumbers alone (the reference the tests compare the quick path with).

    A number of a possible length in a range phonenumbers does not know (a newly allocated
    range, say) is sent with a warning; ``strict_ranges`` makes it an error instead."""

    def __init__(
        self,
        region: str = DEFAULT_REGION,
        phone_format: str = "national",
        quick: bool = True,
        *,
        strict_ranges: bool = False,
    ) -> None:
        self.strict_ranges = strict_ranges
        region = (region or "").strip().upper()
        self.region = region if region in phonenumbers.SUPPORTED_REGIONS else None
        self.phone_format = phone_format if phone_format in PHONE_FORMATS else "national"
        self.country_code = (
            phonenumbers.country_code_for_region(self.region) if self.region else None
        )
        self.cc_str = str(self.country_code) if self.country_code else "\0"
        meta = PhoneMetadata.metadata_for_region(self.region, None) if self.region else None
        self._national_prefix = (meta.national_prefix or None) if meta is not None else None
        self._main_rules: _RegionRules | None = None
        self._quick: _QuickReader | None = None
        self._first_region: tuple[str, _RegionRules] | None = None
        if quick and self.region and self.country_code is not None and _QUICK_PATH_AVAILABLE:
            try:
                self._main_rules = _rules(
                    phonenumbers.region_code_for_country_code(self.country_code)
                )
                self._quick = _QuickReader(self.region)
                # The first region of the country code decides first when it needs no leading
                # digits (AU before CC and CX for +61).
                candidates = _rules_for_code(self.country_code)
                if candidates and candidates[0][1].leading_digits is None:
                    self._first_region = candidates[0]
            except Exception:  # a phonenumbers release that differs inside: use it plainly
                self._main_rules = self._quick = self._first_region = None
        # The lane for the most common cell: a domestic number written with its national prefix.
        self._lane = (
            self._quick is not None
            and self._main_rules is not None
            and self._national_prefix is not None
            and self.phone_format == "national"
            and self._quick.rules.transform_rule is None
            and not self.cc_str.startswith(self._national_prefix)
        )
        self._cache: dict[str, PhoneResult] = {}

    def normalise(self, raw: str) -> PhoneResult:
        """The reading of one cell; cached by the exact text."""
        cached = self._cache.get(raw)
        if cached is not None:
            return cached
        try:
            result = self._normalise(raw)
        except Exception as exc:  # phonenumbers on strange input: a message, never a crash
            result = PhoneResult(
                raw, severity="error", problem=f"This phone number could not be read ({exc})."
            )
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[raw] = result
        return result

    def _domestic_lane(self, raw: str, digits: str) -> PhoneResult | None:
        """``digits`` starts with the national prefix: phonenumbers' reading, inlined; None when
        the general path must decide."""
        quick = self._quick
        assert quick is not None
        assert self._main_rules is not None
        if len(digits) < 3 or (quick.idd is not None and quick.idd.match(digits)):
            return None
        rules = quick.rules
        nsn = digits
        npp = rules.national_prefix_for_parsing
        if npp is not None:
            match = npp.match(digits)
            if match is not None:
                stripped = digits[match.end() :]
                general = rules.general
                keep = general is not None and (
                    general.fullmatch(digits) is not None and general.fullmatch(stripped) is None
                )
                if not keep and rules.length_result.get(len(stripped), _TOO_LONG) not in (
                    _SHORT_LENGTHS
                ):
                    nsn = stripped
        if not 2 <= len(nsn) <= 17:
            return None
        first = self._first_region
        check = first[1].valid_by_length.get(len(nsn)) if first is not None else None
        if first is not None and check is not None and check.fullmatch(nsn) is not None:
            number_region: str | None = first[0]
        else:
            valid, number_region = _fast_valid(quick.cc, nsn)
            if not valid:
                return None
        return PhoneResult(
            raw, f"+{self.cc_str}{nsn}", self._main_rules.national_digits(nsn), region=number_region
        )

    # The reading itself, uncached.
    def _normalise(self, raw: str) -> PhoneResult:
        text = raw.strip()
        if not text:
            return PhoneResult(raw)
        squeezed = text.replace(" ", "")
        if not squeezed.isdigit():
            squeezed = squeezed.translate(_SEPARATORS)
        if (
            self._lane
            and self._national_prefix is not None  # always so when the lane is open
            and squeezed.isdigit()
            and squeezed.isascii()
            and squeezed.startswith(self._national_prefix)
            and "." not in text
        ):
            result = self._domestic_lane(raw, squeezed)
            if result is not None:
                return result
        notes: list[str] = []
        repaired = text
        decimal = None
        plus = squeezed.startswith("+")
        digits = squeezed[1:] if plus else squeezed
        plain_digits = digits.isascii() and digits.isdigit()
        if not plain_digits or "." in text:
            # The rare shapes: spreadsheet damage, two numbers in a cell, letters, extensions.
            if _SCIENTIFIC.fullmatch(text):
                return PhoneResult(
                    raw,
                    severity="error",
                    problem=(
                        f"'{text}' was turned into scientific notation by a spreadsheet, so its "
                        "last digits are lost. Format the phone column as Text in the "
                        "spreadsheet, restore the numbers from their source and paste again."
                    ),
                )
            decimal = _DECIMAL_ZERO.fullmatch(text)
            if decimal is not None:
                repaired = decimal.group(1)
                notes.append(f"a spreadsheet stored it as a decimal number ('{text}')")
                squeezed = repaired.translate(_SEPARATORS)
                plus = squeezed.startswith("+")
                digits = squeezed[1:] if plus else squeezed
                plain_digits = digits.isascii() and digits.isdigit()
            several = self._several_numbers(repaired)
            if several is not None:
                return several

        numobj: phonenumbers.PhoneNumber | None = None
        quick = None
        if plain_digits and self._quick is not None:
            quick = self._quick.read(digits, plus)
        if quick is not None:
            cc, nsn = quick
            valid, number_region = _fast_valid(cc, nsn)
        else:
            try:
                numobj = phonenumbers.parse(repaired, self.region)
            except NumberParseException as exc:
                return PhoneResult(raw, severity="error", problem=self._parse_failure(text, exc))
            # parse gives every number it returns its country code (else it raises).
            assert numobj.country_code is not None
            cc = numobj.country_code
            nsn = phonenumbers.national_significant_number(numobj)
            valid = phonenumbers.is_valid_number(numobj)
            number_region = phonenumbers.region_code_for_number(numobj)

        if not valid:
            if numobj is None:
                numobj = _number(cc, nsn)
            country = country_name(number_region or phonenumbers.region_code_for_country_code(cc))
            length_problem = _length_problem(numobj, country)
            if length_problem is None and not _reads_back(cc, nsn):
                # "+49 0030000": the E.164 form would read as another number (+49 30000), so
                # sending it, or calling it a number that may not exist, names the wrong one.
                length_problem = (
                    f"after the country code its digits start with 0, which numbers of {country} "
                    "never do"
                    if nsn.startswith("0")
                    else "written with its country code it reads as a different number"
                )
            if length_problem is not None or self.strict_ranges:
                reason = length_problem or f"its digits do not match any number range of {country}"
                return PhoneResult(
                    raw,
                    severity="error",
                    problem=f"'{text}' is not a valid phone number: {reason}.",
                    region=number_region,
                )
            notes.insert(0, UNKNOWN_RANGE_NOTE)

        e164 = f"+{cc}{nsn}"
        domestic = cc == self.country_code
        national = self._national_digits(cc, nsn) if domestic else None
        if (
            not valid
            and national is not None
            and self._national_prefix
            and not self._has_format(cc, nsn)
        ):
            # No national format covers an unknown range: dial it with the national prefix,
            # as it is written at home (phonenumbers would give the bare significant number).
            national = self._national_prefix + nsn
        formatted = self._format(e164, cc, nsn, national)

        fix = None
        fix_label = ""
        prefix = self._national_prefix
        if (
            domestic
            and plain_digits
            and not plus
            and prefix
            and not digits.startswith(prefix)
            and not digits.startswith(self.cc_str)
            and national == prefix + digits
        ):
            notes.append(f"it looks like a spreadsheet dropped its leading {prefix}")
            fix = prefix + repaired
            fix_label = f"Add the leading {prefix}"
        elif decimal is not None:
            fix = repaired
            fix_label = "Remove the decimals"
        if numobj is not None and numobj.extension:
            notes.append(f"the extension {numobj.extension} is not sent, only the main number")
        if not domestic:
            overseas = number_region or phonenumbers.region_code_for_country_code(cc)
            notes.append(
                f"it is an overseas number ({country_name(overseas)}); check that the "
                "dialler may call it"
            )
        if notes:
            message = f"Phone '{text}': " + "; ".join(notes) + f". It will be sent as {formatted}."
            return PhoneResult(
                raw, e164, formatted, "warning", message, fix, fix_label, number_region
            )
        return PhoneResult(raw, e164, formatted, region=number_region)

    def _national_digits(self, cc: int, nsn: str) -> str:
        if self._quick is None:  # the reference: phonenumbers itself
            formatted = phonenumbers.format_number(_number(cc, nsn), PhoneNumberFormat.NATIONAL)
            return _DIGITS_ONLY.sub("", formatted)
        rules = self._main_rules if cc == self.country_code else None
        if rules is None:
            rules = _rules(phonenumbers.region_code_for_country_code(cc))
        return rules.national_digits(nsn) if rules is not None else nsn

    def _has_format(self, cc: int, nsn: str) -> bool:
        """Whether one of the national formats of ``cc``'s main region fits ``nsn``."""
        if self._quick is None:  # the reference: phonenumbers itself
            region = phonenumbers.region_code_for_country_code(cc)
            meta = PhoneMetadata.metadata_for_region(region, None)
            return meta is not None and (
                _pnu._choose_formatting_pattern_for_number(meta.number_format, nsn) is not None
            )
        rules = self._main_rules if cc == self.country_code else None
        if rules is None:
            rules = _rules(phonenumbers.region_code_for_country_code(cc))
        chooser = rules.format_chooser if rules is not None else None
        return chooser is not None and chooser.match(nsn) is not None

    def _format(self, e164: str, cc: int, nsn: str, national: str | None) -> str:
        if self.phone_format == "e164":
            return e164
        if self.phone_format == "national":
            return national if national is not None else e164
        return phonenumbers.format_number(_number(cc, nsn), PhoneNumberFormat.INTERNATIONAL)

    def _several_numbers(self, text: str) -> PhoneResult | None:
        """An error when the cell holds two or more numbers ("0412 345 678 / 03 9876 5432")."""
        if not _MULTI_SPLIT.search(text):
            return None
        parts = [p for p in _MULTI_SPLIT.split(text) if p]
        if len(parts) < 2 or sum(1 for p in parts if sum(c.isdigit() for c in p) >= 6) < 2:
            return None
        first = parts[0].strip()
        return PhoneResult(
            text,
            severity="error",
            problem=(
                f"'{text}' holds more than one phone number. Put one number in each phone "
                "field (for example the second one into the next phone column)."
            ),
            fix=first,
            fix_label=f"Keep only {first}",
        )

    def _parse_failure(self, text: str, exc: NumberParseException) -> str:
        kind = exc.error_type
        if kind == NumberParseException.INVALID_COUNTRY_CODE:
            if self.region is None:
                return (
                    f"'{text}' has no country code. Write it with + and the country code "
                    "(for example +61 3 8321 8199), or set the default country in the settings."
                )
            return f"'{text}' starts with a country code that does not exist."
        if kind in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
            return f"'{text}' is too short to be a phone number."
        if kind == NumberParseException.TOO_LONG:
            return f"'{text}' is too long to be a phone number."
        return f"'{text}' is not a phone number."


@functools.lru_cache(maxsize=16)
def normaliser(
    region: str = DEFAULT_REGION, phone_format: str = "national", strict_ranges: bool = False
) -> PhoneNormaliser:
    """A shared normaliser (with its cache) for one region, send format and range rule."""
    return PhoneNormaliser(region, phone_format, strict_ranges=strict_ranges)


def normalise(
    raw: str,
    region: str = DEFAULT_REGION,
    phone_format: str = "national",
    strict_ranges: bool = False,
) -> PhoneResult:
    """The reading of one phone cell for the default ``region``; see PhoneNormaliser."""
    return normaliser(region, phone_format, strict_ranges).normalise(raw)


def e164_of(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """The E.164 form of ``raw``, or None when it is not a number that can be sent (numbers in
    ranges the number plans do not list are sendable, with a warning)."""
    return normalise(raw, region, "e164").e164
