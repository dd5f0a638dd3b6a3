"""Phone numbers: read what people and spreadsheets write, repair spreadsheet damage, format."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat
from phonenumbers import phonenumberutil as _pnu

PhoneFormat = Literal["national", "e164", "international"]
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


@dataclass(frozen=True, slots=True)
class PhoneResult:
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
        self.types = {
            length: re.compile("|".join(f"(?:{p})" for p in patterns))
            for length, patterns in by_length.items()
        }
        self.formats: list[tuple[re.Pattern[str] | None, re.Pattern[str], str, str | None]] = []
        for fmt in meta.number_format:
            leading = (
                re.compile(fmt.leading_digits_pattern[-1]) if fmt.leading_digits_pattern else None
            )
            rule = fmt.format
            np_rule = fmt.national_prefix_formatting_rule
            if np_rule:
                rule = re.sub(_pnu._FIRST_GROUP_PATTERN, np_rule, fmt.format, count=1)
            compiled = re.compile(fmt.pattern)
            self.formats.append((leading, compiled, rule, _digit_prefix(compiled, rule)))

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
        length = len(nsn)
        if self.general is None or (self.general_lengths and length not in self.general_lengths):
            return False
        if self.general.fullmatch(nsn) is None:
            return False
        types = self.types.get(length)
        return types is not None and types.fullmatch(nsn) is not None

    def national_digits(self, nsn: str) -> str:
        """The digits of phonenumbers' NATIONAL format of ``nsn``."""
        for leading, pattern, rule, prefix in self.formats:
            if (leading is None or leading.match(nsn)) and pattern.fullmatch(nsn):
                if prefix is not None:
                    return prefix + nsn
                return _DIGITS_ONLY.sub("", pattern.sub(rule, nsn))
        return nsn


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


def _fast_valid(cc: int, nsn: str) -> tuple[bool, str | None]:
    """(is valid, region of the number) as phonenumbers.is_valid_number decides it."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    if len(regions) == 1:
        rules = _rules(regions[0])
        return (rules is not None and rules.has_valid_type(nsn)), regions[0]
    for region in regions:
        rules = _rules(region)
        if rules is None:
            continue
        if rules.leading_digits is not None:
            if rules.leading_digits.match(nsn):
                return rules.has_valid_type(nsn), region
        elif rules.has_valid_type(nsn):
            return True, region
    return False, None


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
        self.cc = rules.meta.country_code
        self.cc_str = str(self.cc)
        idd = rules.meta.international_prefix
        self.idd = re.compile(idd) if idd else None

    def read(self, digits: str, plus: bool) -> tuple[int, str] | None:
        """(country code, national significant number), or None to use the full parser."""
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


# --- the normaliser -----------------------------------------------------------------------------


@functools.cache
def country_name(region: str | None) -> str:
    """An English name for a region code ("AU" -> "Australia"); the code itself when unknown."""
    if not region:
        return "an unknown country"
    try:
        from phonenumbers.geocoder import _region_display_name

        return _region_display_name(region, "en", None, None) or region
    except Exception:
        return region


def _reason_text(numobj: phonenumbers.PhoneNumber, country: str) -> str:
    reason = phonenumbers.is_possible_number_with_reason(numobj)
    result = phonenumbers.ValidationResult
    region = phonenumbers.region_code_for_country_code(numobj.country_code)
    meta = PhoneMetadata.metadata_for_region(region, None)
    fixed = meta.fixed_line if meta is not None else None
    nsn_length = len(phonenumbers.national_significant_number(numobj))
    if (
        reason in (result.IS_POSSIBLE, result.IS_POSSIBLE_LOCAL_ONLY, result.INVALID_LENGTH)
        and fixed is not None
        and fixed.possible_length
        and 0 < nsn_length < min(fixed.possible_length)
        and fixed.possible_length_local_only
    ):
        return "it has too few digits, so the area code may be missing"
    if reason == result.TOO_SHORT:
        return f"it has too few digits for a {country} number"
    if reason == result.TOO_LONG:
        return f"it has too many digits for a {country} number"
    if reason == result.IS_POSSIBLE_LOCAL_ONLY:
        return "it looks like a local number without its area code; add the area code"
    if reason == result.INVALID_LENGTH:
        return f"it has the wrong number of digits for a {country} number"
    return f"its digits do not match any {country} number range"


class PhoneNormaliser:
    """Turns phone cells into numbers to send for one default region and send format."""

    def __init__(self, region: str = DEFAULT_REGION, phone_format: str = "national") -> None:
        region = (region or "").strip().upper()
        self.region = region if region in phonenumbers.SUPPORTED_REGIONS else None
        self.phone_format = phone_format if phone_format in PHONE_FORMATS else "national"
        self.country_code = (
            phonenumbers.country_code_for_region(self.region) if self.region else None
        )
        meta = PhoneMetadata.metadata_for_region(self.region, None) if self.region else None
        self._national_prefix = meta.national_prefix if meta is not None else None
        self._quick = _QuickReader(self.region) if self.region else None
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

    # The reading itself, uncached.
    def _normalise(self, raw: str) -> PhoneResult:
        text = raw.strip()
        if not text:
            return PhoneResult(raw)
        notes: list[str] = []
        repaired = text
        decimal = None
        squeezed = text.translate(_SEPARATORS)
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
            cc = numobj.country_code
            nsn = phonenumbers.national_significant_number(numobj)
            valid = phonenumbers.is_valid_number(numobj)
            number_region = phonenumbers.region_code_for_number(numobj)

        if not valid:
            if numobj is None:
                numobj = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
                _pnu._set_italian_leading_zeros_for_phone_number(nsn, numobj)
            country = country_name(number_region or phonenumbers.region_code_for_country_code(cc))
            return PhoneResult(
                raw,
                severity="error",
                problem=f"'{text}' is not a valid phone number: {_reason_text(numobj, country)}.",
                region=number_region,
            )

        e164 = f"+{cc}{nsn}"
        domestic = cc == self.country_code
        national = None
        if domestic and (self.phone_format == "national" or notes or plain_digits):
            national = self._national_digits(cc, nsn, number_region)
        formatted = self._format(e164, cc, nsn, national, number_region, numobj)

        fix = None
        fix_label = ""
        if (
            domestic
            and plain_digits
            and not plus
            and self._national_prefix
            and not digits.startswith(self._national_prefix)
            and not digits.startswith(self.cc_str)
            and national == self._national_prefix + digits
        ):
            notes.append(f"it looks like a spreadsheet dropped its leading {self._national_prefix}")
            fix = self._national_prefix + repaired
            fix_label = f"Add the leading {self._national_prefix}"
        elif decimal is not None:
            fix = repaired
            fix_label = "Remove the decimals"
        if numobj is not None and numobj.extension:
            notes.append(f"the extension {numobj.extension} is not sent, only the main number")
        if not domestic:
            notes.append(
                f"it is an overseas number ({country_name(number_region)}); check that the "
                "dialler may call it"
            )
        if notes:
            message = f"Phone '{text}': " + "; ".join(notes) + f". It will be sent as {formatted}."
            return PhoneResult(
                raw, e164, formatted, "warning", message, fix, fix_label, number_region
            )
        return PhoneResult(raw, e164, formatted, region=number_region)

    @property
    def cc_str(self) -> str:
        return str(self.country_code) if self.country_code else "\0"

    def _national_digits(self, cc: int, nsn: str, region: str | None) -> str:
        main = phonenumbers.region_code_for_country_code(cc)
        rules = _rules(main)
        return rules.national_digits(nsn) if rules is not None else nsn

    def _format(
        self,
        e164: str,
        cc: int,
        nsn: str,
        national: str | None,
        region: str | None,
        numobj: phonenumbers.PhoneNumber | None,
    ) -> str:
        if self.phone_format == "e164":
            return e164
        if self.phone_format == "national":
            if cc == self.country_code and national is not None:
                return national
            return e164
        if numobj is None:
            numobj = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
            _pnu._set_italian_leading_zeros_for_phone_number(nsn, numobj)
        else:
            numobj = phonenumbers.PhoneNumber(
                country_code=numobj.country_code,
                national_number=numobj.national_number,
                italian_leading_zero=numobj.italian_leading_zero,
                number_of_leading_zeros=numobj.number_of_leading_zeros,
            )
        return phonenumbers.format_number(numobj, PhoneNumberFormat.INTERNATIONAL)

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
def normaliser(region: str = DEFAULT_REGION, phone_format: str = "national") -> PhoneNormaliser:
    """A shared normaliser (with its cache) for one region and send format."""
    return PhoneNormaliser(region, phone_format)


def normalise(
    raw: str, region: str = DEFAULT_REGION, phone_format: str = "national"
) -> PhoneResult:
    """The reading of one phone cell for the default ``region``; see PhoneNormaliser."""
    return normaliser(region, phone_format).normalise(raw)


def e164_of(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """The E.164 form of ``raw``, or None when it is not a valid number."""
    return normalise(raw, region, "e164").e164
