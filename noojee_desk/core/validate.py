"""Check leads before they are queued: per cell what is wrong, how bad, and a fix if any."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

from noojee_desk.core import codes
from noojee_desk.core.dates import DEFAULT_TIMEZONE, parse_callback, zone
from noojee_desk.core.layouts import DEFAULT_MAX_LENGTH, SYSTEM_FIELDS, FieldLayout
from noojee_desk.core.phones import PHONE_FORMATS, PhoneNormaliser

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

NO_CHANGE = "<NO CHANGE>"
PRIORITY_DEFAULT = 10

RecentPhones = Callable[[Iterable[str]], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Fix:
    """A one-click repair: ``value`` is the new text of the cell."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one lead; ``field`` None means the lead as a whole."""

    row: int
    field: str | None
    severity: Severity
    message: str
    fix: Fix | None = None


@dataclass(slots=True)
class LeadCheck:
    """The result of checking one lead: the values to send, the problems, the numbers (E.164)."""

    row: int
    fields: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    phones: frozenset[str] = frozenset()
    numbers: dict[str, str] = field(default_factory=dict)  # phone field -> E.164, valid ones only

    @property
    def ok(self) -> bool:
        """No errors (warnings do not stop a lead from being sent)."""
        return not any(p.severity == ERROR for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """How leads are checked and normalised; part of the desk's profile settings."""

    region: str = "AU"  # the country of numbers written without a country code
    phone_format: str = "national"  # "national" | "e164" | "international": what is sent
    day_first: bool = True  # 05/06/2026 is 5 June
    timezone: str = DEFAULT_TIMEZONE  # the PBX's contact-hours zone: callback dates are sent in it
    recent_days: int = 30  # numbers delivered this many days back count as recent
    max_length: int = DEFAULT_MAX_LENGTH  # for fields the layout does not describe

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: object) -> ValidationSettings:
        """Settings from stored data; unusable values fall back to the defaults."""
        result = cls()
        if not isinstance(data, Mapping):
            return result
        changes: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            default = getattr(result, f.name)
            if type(value) is type(default):
                changes[f.name] = value
        settings = replace(result, **changes)
        if settings.phone_format not in PHONE_FORMATS:
            settings = replace(settings, phone_format="national")
        if settings.recent_days < 0:
            settings = replace(settings, recent_days=result.recent_days)
        if settings.max_length < 1:
            settings = replace(settings, max_length=result.max_length)
        return settings


# --- cleaning text -------------------------------------------------------------------------------

_LINE_BREAKS = re.compile(r"[ \t]*[\r\n\u2028\u2029\x0b\x0c\x85]+[ \t]*")


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cc":
        return " " if char == "\t" else ""
    if category in ("Zs", "Zl", "Zp"):
        return " "
    if category in ("Cf", "Cs", "Co", "Cn"):
        return ""
    return char


def clean_text(raw: str) -> str:
    """``raw`` without surrounding white space; line breaks and tabs become spaces, other control
    and invisible format characters (zero-width space, BOM) are removed."""
    if raw.isprintable():
        return raw.strip()
    text = _LINE_BREAKS.sub(" ", raw)
    return "".join(c if c.isprintable() else _clean_char(c) for c in text).strip()


# --- the validator -------------------------------------------------------------------------------

_PHONE, _CALLBACK, _PRIORITY, _EXTERNAL_ID, _TEXT, _UNKNOWN = range(6)
_PRIORITY_TEXT = re.compile(r"\+?(\d{1,6})(?:[.,]0+)?")
_PRIORITY_DECIMAL = re.compile(r"\+?\d{1,6}[.,]\d+")


class Validator:
    """Checks leads for one template layout. Reusable; ``validate_rows`` checks a whole batch."""

    def __init__(
        self,
        layout: FieldLayout,
        settings: ValidationSettings | None = None,
        recent_phones: RecentPhones | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.layout = layout
        self.settings = settings or ValidationSettings()
        self.recent_phones = recent_phones
        self._clock = clock or (lambda: datetime.now(UTC))
        self._phones = PhoneNormaliser(self.settings.region, self.settings.phone_format)
        self._zone = zone(self.settings.timezone)
        self._kinds: dict[str, tuple[int, int]] = {}
        for spec in layout.fields:
            self._kinds[spec.name] = (_PHONE if spec.phone else _TEXT, spec.max_length)
        system_kinds = {
            "njExternalLeadId": _EXTERNAL_ID,
            "njCallBackDate": _CALLBACK,
            "njPriority": _PRIORITY,
            "njContactHours": _TEXT,
        }
        for name in SYSTEM_FIELDS:
            self._kinds.setdefault(name, (system_kinds[name], self.settings.max_length))
        self._phone_fields = layout.phone_fields
        self._required = layout.required_fields

    # Public API ----------------------------------------------------------------------------------
    def validate_rows(
        self, rows: Sequence[Mapping[str, str]], first_row: int = 1
    ) -> list[LeadCheck]:
        """Checks every row, then the batch as a whole: numbers that appear twice (naming the other
        row), external ids used twice, and numbers delivered recently from this desk."""
        now = self._clock()
        callbacks: dict[str, tuple[str | None, Any]] = {}
        checks = [self._check(first_row + i, row, now, callbacks) for i, row in enumerate(rows)]
        self._batch_duplicates(checks)
        self._mark_recent(checks)
        return checks

    def validate_one(
        self,
        fields: Mapping[str, str],
        other_phones: Mapping[str, str] | Iterable[str] = (),
        row: int = 1,
    ) -> LeadCheck:
        """Checks a single lead (the form). ``other_phones``: E.164 numbers already queued, as a
        set or mapped to a description ("row 4 of this batch")."""
        check = self._check(row, fields, self._clock(), {})
        described = (
            other_phones if isinstance(other_phones, Mapping) else dict.fromkeys(other_phones, "")
        )
        if described:
            for name, e164, shown in self._phone_cells(check):
                if e164 in described:
                    where = described[e164]
                    detail = f" ({where})" if where else ""
                    check.problems.append(
                        Problem(
                            row,
                            name,
                            WARNING,
                            f"The number {shown} is already waiting to be sent{detail}; the PBX "
                            "will probably reject the second lead as a duplicate "
                            f"({codes.DUPLICATE}).",
                        )
                    )
        self._mark_recent([check])
        return check

    # One row -------------------------------------------------------------------------------------
    def _check(
        self,
        row: int,
        record: Mapping[str, str],
        now: datetime,
        callbacks: dict[str, tuple[str | None, Any]],
    ) -> LeadCheck:
        out: dict[str, str] = {}
        problems: list[Problem] = []
        numbers: dict[str, str] = {}
        bad_phones: list[tuple[str, str, str | None, str]] = []
        kinds = self._kinds
        for name, raw in record.items():
            if not isinstance(raw, str):
                raw = "" if raw is None else str(raw)
            value = raw.strip() if raw.isprintable() else clean_text(raw)
            if not value:
                continue
            if value[0] == "<" and value.upper() == NO_CHANGE:
                problems.append(
                    Problem(
                        row,
                        name,
                        ERROR,
                        f"'{value}' is only allowed when updating a lead; a new lead needs the "
                        "real value or an empty field (the PBX would answer "
                        f"{codes.IMPORT_BUT_NOCHANGE}).",
                        Fix("Leave it empty", ""),
                    )
                )
                continue
            kind, max_length = kinds.get(name, (_UNKNOWN, self.settings.max_length))
            if kind == _PHONE:
                result = self._phones.normalise(value)
                if result.e164 is not None:
                    out[name] = result.formatted or value
                    numbers[name] = result.e164
                    if result.severity is not None:
                        problems.append(
                            Problem(
                                row,
                                name,
                                WARNING,
                                result.problem or "",
                                Fix(result.fix_label, result.fix) if result.fix else None,
                            )
                        )
                else:
                    out[name] = value
                    bad_phones.append(
                        (
                            name,
                            result.problem or "This is not a phone number.",
                            result.fix,
                            result.fix_label,
                        )
                    )
                continue
            if kind == _CALLBACK:
                cached = callbacks.get(value)
                if cached is None:
                    cached = callbacks[value] = parse_callback(
                        value, self.settings.day_first, self._zone, now
                    )
                sent, issue = cached
                if sent is not None:
                    out[name] = sent
                else:
                    out[name] = value
                if issue is not None:
                    problems.append(Problem(row, name, issue.severity, issue.message))
                continue
            if kind == _PRIORITY:
                out[name] = self._priority(row, name, value, problems)
                continue
            if kind == _UNKNOWN:
                problems.append(
                    Problem(
                        row,
                        name,
                        WARNING,
                        f"'{name}' is not a field of this template's layout; the PBX may ignore "
                        "it. Add it to the layout or leave the column unmapped.",
                    )
                )
            if len(value) > max_length:
                problems.append(
                    Problem(
                        row,
                        name,
                        ERROR,
                        f"{name} is {len(value)} characters long; at most {max_length} are "
                        "allowed.",
                        Fix(f"Cut to {max_length} characters", value[:max_length].rstrip()),
                    )
                )
            out[name] = value
        for name, message, fix_value, fix_label in bad_phones:
            fix = Fix(fix_label, fix_value) if fix_value is not None else None
            if fix is None and numbers:
                fix = Fix("Leave it empty", "")
            problems.append(Problem(row, name, ERROR, message, fix))
        for name in self._required:
            if name not in out and not any(p.field == name for p in problems):
                problems.append(Problem(row, name, ERROR, f"{name} is required for this template."))
        if not numbers and not bad_phones:
            problems.append(self._no_phone(row))
        return LeadCheck(row, out, problems, frozenset(numbers.values()), numbers)

    def _no_phone(self, row: int) -> Problem:
        if not self._phone_fields:
            return Problem(
                row,
                None,
                ERROR,
                "The template's layout has no phone field, and the PBX refuses leads without a "
                f"phone number ({codes.NO_PHONE_FIELDS}). Mark the phone fields in the layout.",
            )
        names = " or ".join(self._phone_fields)
        return Problem(
            row,
            self._phone_fields[0],
            ERROR,
            f"This lead has no phone number; fill in {names} (the PBX would answer "
            f"{codes.NO_PHONE_FIELDS}).",
        )

    def _priority(self, row: int, name: str, value: str, problems: list[Problem]) -> str:
        match = _PRIORITY_TEXT.fullmatch(value)
        if match is not None:
            number = int(match.group(1))
            if number <= 100:
                return str(number)
            problems.append(
                Problem(
                    row,
                    name,
                    ERROR,
                    f"Priority {value} is too high: use a whole number from 0 (most urgent) to "
                    f"100; {PRIORITY_DEFAULT} is the default.",
                    Fix("Use 100", "100"),
                )
            )
            return value
        fix = None
        if _PRIORITY_DECIMAL.fullmatch(value):
            rounded = min(100, round(float(value.replace(",", "."))))
            fix = Fix(f"Use {rounded}", str(rounded))
        problems.append(
            Problem(
                row,
                name,
                ERROR,
                f"Priority '{value}' is not a whole number from 0 (most urgent) to 100; "
                f"{PRIORITY_DEFAULT} is the default.",
                fix,
            )
        )
        return value

    # The batch -----------------------------------------------------------------------------------
    @staticmethod
    def _phone_cells(check: LeadCheck) -> list[tuple[str, str, str]]:
        """(field, E.164, value sent) of each valid phone of a checked lead, each number once."""
        if len(check.numbers) == 1:
            ((name, e164),) = check.numbers.items()
            return [(name, e164, check.fields.get(name, e164))]
        cells = []
        seen: set[str] = set()
        for name, e164 in check.numbers.items():
            if e164 not in seen:
                seen.add(e164)
                cells.append((name, e164, check.fields.get(name, e164)))
        return cells

    def _batch_duplicates(self, checks: list[LeadCheck]) -> None:
        first_seen: dict[str, tuple[int, str]] = {}
        ids: dict[str, int] = {}
        for check in checks:
            if check.numbers:
                for name, e164, shown in self._phone_cells(check):
                    earlier = first_seen.get(e164)
                    if earlier is None:
                        first_seen[e164] = (check.row, name)
                        continue
                    other_row, other_field = earlier
                    check.problems.append(
                        Problem(
                            check.row,
                            name,
                            WARNING,
                            f"The number {shown} is also in row {other_row} ({other_field}); "
                            "the PBX will probably reject the later lead as a duplicate "
                            f"({codes.DUPLICATE}).",
                        )
                    )
            external = check.fields.get("njExternalLeadId")
            if external:
                earlier_row = ids.get(external)
                if earlier_row is None:
                    ids[external] = check.row
                else:
                    check.problems.append(
                        Problem(
                            check.row,
                            "njExternalLeadId",
                            ERROR,
                            f"The external id '{external}' is also used in row {earlier_row}; "
                            "each lead needs its own (the PBX would answer "
                            f"{codes.DUPLICATE_EXTERNAL_ID}).",
                            Fix("Leave it empty (one is generated)", ""),
                        )
                    )

    def _mark_recent(self, checks: list[LeadCheck]) -> None:
        if self.recent_phones is None:
            return
        numbers = {e164 for check in checks for e164 in check.phones}
        if not numbers:
            return
        try:
            recent = self.recent_phones(numbers)
        except Exception:  # advisory only: the history is a hint, never a reason to fail a check
            return
        if not recent:
            return
        for check in checks:
            if check.phones.isdisjoint(recent):
                continue
            for name, e164, shown in self._phone_cells(check):
                when = recent.get(e164)
                if when is None:
                    continue
                check.problems.append(
                    Problem(
                        check.row,
                        name,
                        WARNING,
                        f"The number {shown} was already sent from this desk ({when}); the PBX "
                        f"will probably reject this lead as a duplicate ({codes.DUPLICATE}).",
                    )
                )
