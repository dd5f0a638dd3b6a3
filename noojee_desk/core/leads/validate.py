"""Check leads before they are queued: per cell what is wrong, how bad, and a fix if any."""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from noojee_desk.core import pbx
from noojee_desk.core.bulk import SLICE, paused_gc
from noojee_desk.core.leads.dates import DEFAULT_TIMEZONE, parse_callback, zone
from noojee_desk.core.leads.layouts import DEFAULT_MAX_LENGTH, SYSTEM_FIELDS, FieldLayout
from noojee_desk.core.leads.phones import PHONE_FORMATS, normaliser

if TYPE_CHECKING:
    from noojee_desk.core.profiles.settings import Profile, Settings

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


@dataclass(slots=True)
class _Seen:
    """What a batch check has met so far: each number's first row and field, each id's row."""

    numbers: dict[str, tuple[int, str]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


#: Rows checked together (see ``Validator.validate_rows``).
CHECK_SLICE = SLICE


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """How leads are checked and normalised; part of the desk's profile settings."""

    region: str = "AU"  # the country of numbers written without a country code
    phone_format: str = "national"  # "national" | "e164" | "international": what is sent
    day_first: bool = True  # 05/06/2026 is 5 June
    timezone: str = DEFAULT_TIMEZONE  # the PBX's contact-hours zone: callback dates are sent in it
    recent_days: int = 30  # numbers delivered this many days back count as recent
    max_length: int = DEFAULT_MAX_LENGTH  # for fields the layout does not describe
    # A number of a possible length in a range the number plans do not list is an error (True)
    # or, by default, a warning: a newly allocated range must not block real customers.
    strict_ranges: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, settings: Settings, profile: Profile | None) -> ValidationSettings:
        """The rules the app's settings give for ``profile`` (callbacks in its PBX's zone, its
        rule for numbers outside the known ranges)."""
        return cls(
            region=settings.region,
            phone_format=settings.phone_format,
            day_first=settings.day_first,
            timezone=profile.timezone if profile is not None else DEFAULT_TIMEZONE,
            recent_days=settings.recent_days,
            strict_ranges=profile.strict_ranges if profile is not None else False,
        )

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


class _Check(Enum):
    """How a field's value is checked."""

    PHONE = "phone"
    CALLBACK = "callback"
    PRIORITY = "priority"
    EXTERNAL_ID = "external_id"
    TEXT = "text"
    UNKNOWN = "unknown"  # not a field of the template: checked as text, and said so


_PRIORITY_TEXT = re.compile(r"\+?(\d{1,6})(?:[.,]0+)?")
_PRIORITY_DECIMAL = re.compile(r"\+?\d{1,6}[.,]\d+")


def prepare_checks(settings: ValidationSettings) -> None:
    """Builds what every validator of ``settings`` shares: the phone rules (phonenumbers' metadata
    read and compiled, around a tenth of a second) and the time zone. Afterwards a Validator of
    these settings is quick to make; before, the first one pays. Safe in a worker thread."""
    normaliser(settings.region, settings.phone_format, settings.strict_ranges)
    zone(settings.timezone)


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
        # Shared with every validator of these settings: its cache outlives a template switch.
        self._phones = normaliser(
            self.settings.region, self.settings.phone_format, self.settings.strict_ranges
        )
        self._zone = zone(self.settings.timezone)
        self._kinds: dict[str, tuple[_Check, int]] = {}
        for spec in layout.fields:
            self._kinds[spec.name] = (_Check.PHONE if spec.phone else _Check.TEXT, spec.max_length)
        system_kinds = {
            "njExternalLeadId": _Check.EXTERNAL_ID,
            "njCallBackDate": _Check.CALLBACK,
            "njPriority": _Check.PRIORITY,
            "njContactHours": _Check.TEXT,
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
        seen = _Seen()
        checks: list[LeadCheck] = []
        with paused_gc():
            # A slice at a time: the checks run column by column at C speed, and one C call
            # over 100,000 values holds the GIL long enough to stall a window (the grid checks
            # in a worker thread). ``seen`` carries the duplicates across slices.
            for start in range(0, len(rows), CHECK_SLICE):
                part = rows[start : start + CHECK_SLICE]
                checks += self._check_rows(part, first_row + start, now, seen)
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
        check = self._check_rows([fields], row, self._clock(), None)[0]
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
                            f"({pbx.DUPLICATE}).",
                        )
                    )
        self._mark_recent([check])
        return check

    # Checking, one field (column) at a time ------------------------------------------------------
    def _check_rows(
        self,
        rows: Sequence[Mapping[str, str]],
        first_row: int,
        now: datetime,
        seen: _Seen | None,
    ) -> list[LeadCheck]:
        count = len(rows)
        problems: dict[int, list[Problem]] = {}

        def add(index: int, problem: Problem) -> None:
            found = problems.get(index)
            if found is None:
                problems[index] = [problem]
            else:
                found.append(problem)

        names = list(rows[0]) if rows else []
        if count > 1:
            others = set().union(*rows).difference(names)
            names.extend(sorted(others))
        sent_columns: list[tuple[str, list[str]]] = []
        number_columns: list[tuple[str, list[str | None]]] = []
        bad_phones: dict[int, list[tuple[str, str, str | None, str]]] = {}
        raw_columns = _columns(rows, names)
        if not "".join(map(str, names)).isprintable():
            names, raw_columns = _clean_names(names, raw_columns)
        for name, raw_column in zip(names, raw_columns, strict=True):
            column = _clean_column(raw_column)
            kind, max_length = self._kinds.get(name, (_Check.UNKNOWN, self.settings.max_length))
            if "<" in "".join(column):
                for i, value in enumerate(column):
                    if value[:1] == "<" and value.upper() == NO_CHANGE:
                        add(first_row + i, _no_change(first_row + i, name, value))
                        column[i] = ""
            if kind is _Check.PHONE:
                numbers = self._check_phones(name, column, first_row, add, bad_phones)
                number_columns.append((name, numbers))
            elif kind is _Check.CALLBACK:
                self._check_callbacks(name, column, first_row, now, add)
            elif kind is _Check.PRIORITY:
                for i, value in enumerate(column):
                    if value:
                        found: list[Problem] = []
                        column[i] = self._priority(first_row + i, name, value, found)
                        for problem in found:
                            add(first_row + i, problem)
            else:
                if kind is _Check.UNKNOWN:
                    for i in [i for i, v in enumerate(column) if v]:
                        add(first_row + i, _unknown_field(first_row + i, name))
                if column and max(map(len, column)) > max_length:
                    for i in [i for i, v in enumerate(column) if len(v) > max_length]:
                        add(first_row + i, _too_long(first_row + i, name, column[i], max_length))
            sent_columns.append((name, column))
        return self._assemble(
            count, first_row, sent_columns, number_columns, problems, bad_phones, seen
        )

    def _check_phones(
        self,
        name: str,
        column: list[str],
        first_row: int,
        add: Callable[[int, Problem], None],
        bad_phones: dict[int, list[tuple[str, str, str | None, str]]],
    ) -> list[str | None]:
        normalise = self._phones.normalise
        numbers: list[str | None] = [None] * len(column)
        for i, value in enumerate(column):
            if not value:
                continue
            result = normalise(value)
            e164 = result.e164
            if e164 is not None:
                numbers[i] = e164
                column[i] = result.formatted or value
                if result.severity is not None:
                    fix = Fix(result.fix_label, result.fix) if result.fix is not None else None
                    add(
                        first_row + i,
                        Problem(first_row + i, name, WARNING, result.problem or "", fix),
                    )
            else:
                bad_phones.setdefault(first_row + i, []).append(
                    (
                        name,
                        result.problem or "This is not a phone number.",
                        result.fix,
                        result.fix_label,
                    )
                )
        return numbers

    def _check_callbacks(
        self,
        name: str,
        column: list[str],
        first_row: int,
        now: datetime,
        add: Callable[[int, Problem], None],
    ) -> None:
        readings: dict[str, tuple[str | None, Any]] = {}
        for i, value in enumerate(column):
            if not value:
                continue
            reading = readings.get(value)
            if reading is None:
                reading = readings[value] = parse_callback(
                    value, self.settings.day_first, self._zone, now
                )
            sent, issue = reading
            if sent is not None:
                column[i] = sent
            if issue is not None:
                add(first_row + i, Problem(first_row + i, name, issue.severity, issue.message))

    def _assemble(
        self,
        count: int,
        first_row: int,
        sent_columns: list[tuple[str, list[str]]],
        number_columns: list[tuple[str, list[str | None]]],
        problems: dict[int, list[Problem]],
        bad_phones: dict[int, list[tuple[str, str, str | None, str]]],
        seen: _Seen | None,
    ) -> list[LeadCheck]:
        """One LeadCheck per row, plus the checks that need the whole row or the whole batch."""
        names = [name for name, _ in sent_columns] or [""]
        columns = [column for _, column in sent_columns] or [[""] * count]
        phone_names = [name for name, _ in number_columns] or [""]
        phone_columns = [numbers for _, numbers in number_columns] or [[None] * count]
        required = self._required
        checks: list[LeadCheck] = []
        append = checks.append
        row = first_row - 1
        for values, phones in zip(
            zip(*columns, strict=True), zip(*phone_columns, strict=True), strict=True
        ):
            row += 1
            fields = {k: v for k, v in zip(names, values, strict=True) if v}
            numbers = {k: e for k, e in zip(phone_names, phones, strict=True) if e is not None}
            found = problems.get(row)
            if found is None:
                found = []
            bad = bad_phones.get(row)
            if bad:
                for name, message, fix_value, fix_label in bad:
                    fix = Fix(fix_label, fix_value) if fix_value is not None else None
                    if fix is None and numbers:
                        fix = Fix("Leave it empty", "")
                    found.append(Problem(row, name, ERROR, message, fix))
            elif not numbers:
                found.append(self._no_phone(row))
            for name in required:
                if name not in fields and not any(p.field == name for p in found):
                    found.append(
                        Problem(row, name, ERROR, f"{name} is required for this template.")
                    )
            if seen is not None:
                cells = numbers if len(numbers) < 2 else _first_fields(numbers)
                for name, e164 in cells.items():
                    earlier = seen.numbers.setdefault(e164, (row, name))
                    if earlier[0] != row:
                        found.append(_duplicate(row, name, fields.get(name, e164), *earlier))
                external = fields.get("njExternalLeadId")
                if external:
                    earlier_row = seen.ids.setdefault(external, row)
                    if earlier_row != row:
                        found.append(_duplicate_id(row, external, earlier_row))
            append(LeadCheck(row, fields, found, frozenset(numbers.values()), numbers))
        return checks

    def _no_phone(self, row: int) -> Problem:
        if not self._phone_fields:
            return Problem(
                row,
                None,
                ERROR,
                "The template's layout has no phone field, and the PBX refuses leads without a "
                f"phone number ({pbx.NO_PHONE_FIELDS}). Mark the phone fields in the layout.",
            )
        names = " or ".join(self._phone_fields)
        return Problem(
            row,
            self._phone_fields[0],
            ERROR,
            f"This lead has no phone number; fill in {names} (the PBX would answer "
            f"{pbx.NO_PHONE_FIELDS}).",
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
                        f"will probably reject this lead as a duplicate ({pbx.DUPLICATE}).",
                    )
                )


# --- problems ------------------------------------------------------------------------------------


def _columns(rows: Sequence[Mapping[str, str]], names: list[str]) -> list[Sequence[str]]:
    """The values of each field across ``rows`` ("" where a row lacks the field)."""
    if not rows or not names:
        return [[] for _ in names]
    try:
        if len(names) == 1:
            return [[row[names[0]] for row in rows]]
        return list(zip(*map(operator.itemgetter(*names), rows), strict=True))
    except KeyError:  # rows with different fields
        return [[row.get(name, "") for row in rows] for name in names]


def _clean_names(
    names: list[str], columns: list[Sequence[str]]
) -> tuple[list[str], list[Sequence[str]]]:
    """Field names cleaned as values are (a lone surrogate or a control character in a heading
    cannot be stored or sent); a name left empty drops its column, and two names that clean to
    the same one are one field (the first value that is not empty)."""
    merged: dict[str, list[str]] = {}
    for name, column in zip(names, columns, strict=True):
        key = clean_text(str(name))
        if not key:
            continue
        if key in merged:
            merged[key] = [old or new for old, new in zip(merged[key], column, strict=True)]
        else:
            merged[key] = list(column)
    return list(merged), list(merged.values())


def _clean_column(values: Sequence[str]) -> list[str]:
    """The values as text, cleaned (see clean_text); the common case at C speed.

    A caller that puts None or numbers in its rows, against their type, still gets text."""
    try:
        if "".join(values).isprintable():
            return list(map(str.strip, values))
        return [v.strip() if v.isprintable() else clean_text(v) for v in values]
    except (AttributeError, TypeError):  # not all text: None or numbers from a caller
        return [
            clean_text(v if isinstance(v, str) else "" if v is None else str(v)) for v in values
        ]


def _first_fields(numbers: dict[str, str]) -> dict[str, str]:
    """``numbers`` (field -> E.164) with each number only in the first field holding it."""
    seen: set[str] = set()
    first: dict[str, str] = {}
    for name, e164 in numbers.items():
        if e164 not in seen:
            seen.add(e164)
            first[name] = e164
    return first


def _no_change(row: int, name: str, value: str) -> Problem:
    return Problem(
        row,
        name,
        ERROR,
        f"'{value}' is only allowed when updating a lead; a new lead needs the real value or an "
        f"empty field (the PBX would answer {pbx.IMPORT_BUT_NOCHANGE}).",
        Fix("Leave it empty", ""),
    )


def _unknown_field(row: int, name: str) -> Problem:
    return Problem(
        row,
        name,
        WARNING,
        f"'{name}' is not a field of this template's layout; the PBX may ignore it. Add it to "
        "the layout or leave the column unmapped.",
    )


def _too_long(row: int, name: str, value: str, max_length: int) -> Problem:
    return Problem(
        row,
        name,
        ERROR,
        f"{name} is {len(value)} characters long; at most {max_length} are allowed.",
        Fix(f"Cut to {max_length} characters", value[:max_length].rstrip()),
    )


def _duplicate(row: int, name: str, shown: str, other_row: int, other_field: str) -> Problem:
    return Problem(
        row,
        name,
        WARNING,
        f"The number {shown} is also in row {other_row} ({other_field}); the PBX will probably "
        f"reject the later lead as a duplicate ({pbx.DUPLICATE}).",
    )


def _duplicate_id(row: int, external: str, other_row: int) -> Problem:
    return Problem(
        row,
        "njExternalLeadId",
        ERROR,
        f"The external id '{external}' is also used in row {other_row}; each lead needs its own "
        f"(the PBX would answer {pbx.DUPLICATE_EXTERNAL_ID}).",
        Fix("Leave it empty (one is generated)", ""),
    )


_OTHER_ROW = re.compile(r"(also (?:used )?in row )(\d+)")


def number_rows(checks: Sequence[LeadCheck], numbers: Sequence[int]) -> None:
    """Checks of rows 1, 2, 3 ... (``validate_rows`` with ``first_row=1``) renumbered in place
    to the rows' numbers in their source (``numbers``, one per check): each check, its problems
    and the messages naming another row ("also in row 3")."""
    if len(numbers) != len(checks):
        raise ValueError("number_rows needs one number per check")
    if all(n == i for i, n in enumerate(numbers, start=1)):
        return

    def shown(place: int) -> int:
        return numbers[place - 1] if 0 < place <= len(numbers) else place

    def other(match: re.Match[str]) -> str:
        return f"{match.group(1)}{shown(int(match.group(2)))}"

    for check in checks:
        check.row = shown(check.row)
        check.problems = [
            replace(
                problem,
                row=shown(problem.row),
                message=_OTHER_ROW.sub(other, problem.message)
                if " row " in problem.message
                else problem.message,
            )
            for problem in check.problems
        ]
