"""Callback dates: read what people type or paste; send ``yyyy/MM/dd HH:mm`` in the PBX zone."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from noojee_desk.core.pbx import DEFAULT_TIMEZONE

SEND_FORMAT = "%Y/%m/%d %H:%M"
EXAMPLE = "25/12/2026 9:30am"

# Excel's serial day numbers: day 1 is 1900-01-01, and (for its leap year bug) day 0 is 1899-12-30
# for every date after February 1900. Only dates from 2000 to 2099 are taken for serials.
_EXCEL_EPOCH = datetime(1899, 12, 30)
_SERIAL_MIN, _SERIAL_MAX = 36526, 73051

_MONTHS = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY = re.compile(
    r"\b(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday|rsday)?\b\.?,?"
)
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
_COMPACT = re.compile(r"(20\d{2})(\d{2})(\d{2})(?:[ t]?(\d{2}):?(\d{2}))?")
_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})[t ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
    r"\s*(z|[+-]\d{2}:?\d{2})"
)
_NUMERIC = re.compile(r"(?<!\d)(\d{1,4})([/\-.])(\d{1,2})\2(\d{2}|\d{4})(?!\d)")
_DAY_MONTH = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?[\s\-/.]*({_MONTH})\b\.?[\s\-/.,]*(\d{{4}}|\d{{2}})(?!\d)"
)
_MONTH_DAY = re.compile(
    rf"\b({_MONTH})\b\.?[\s\-/.]*(\d{{1,2}})(?:st|nd|rd|th)?(?!\d)[\s,]*(\d{{4}}|\d{{2}})(?!\d)"
)
_TIME = re.compile(
    r"(\d{1,2})(?:[:.](\d{2}))?(?::(\d{2})(?:\.\d+)?)?\s*(a\.?m\.?|p\.?m\.?|a|p)?(?![\w:])"
)
_FILLER = re.compile(r"^(?:at|@|t|,|-|\s)*|(?:,|\s|h|hrs)*$")


class CallbackIssue(NamedTuple):
    """What is wrong with a callback date, for a sales person."""

    severity: Literal["error", "warning"]
    message: str
    fix: str | None = None


@functools.cache
def zone(name: str | None) -> tzinfo:
    """The time zone called ``name``; the default zone when the name is unknown."""
    for candidate in (name, DEFAULT_TIMEZONE):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return UTC


def _aware(now: datetime | None) -> datetime:
    current = now if now is not None else datetime.now(UTC)
    return current.replace(tzinfo=UTC) if current.tzinfo is None else current


def wall_clock(tz: str | tzinfo, now: datetime | None = None) -> datetime:
    """The time on the wall in ``tz`` at ``now`` (default: this instant), naive, to the minute.

    Never the PC's own zone: a desk on UTC sending to a Sydney PBX reads Sydney's clock."""
    zone_info = tz if isinstance(tz, tzinfo) else zone(tz)
    return _aware(now).astimezone(zone_info).replace(tzinfo=None, second=0, microsecond=0)


def default_callback(tz: str | tzinfo, now: datetime | None = None) -> datetime:
    """The callback a form offers: one real hour from ``now``, as wall-clock time in ``tz``
    (across a daylight-saving change the wall clock moves by 0 or 2 hours)."""
    zone_info = tz if isinstance(tz, tzinfo) else zone(tz)
    later = _aware(now).astimezone(UTC) + timedelta(hours=1)
    return later.astimezone(zone_info).replace(tzinfo=None, second=0, microsecond=0)


def earliest_callback(tz: str | tzinfo, now: datetime | None = None) -> datetime:
    """The earliest callback a form takes: the start of today in ``tz`` (earlier in the day is
    allowed, with the "in the past" warning; an earlier day is a typing mistake)."""
    today = wall_clock(tz, now)
    return today.replace(hour=0, minute=0)


def _two_digit_year(year: int) -> int:
    return 2000 + year if year < 100 else year


def _read_time(text: str) -> time | None:
    """A time of day from the text left after the date, or None when it is not one."""
    text = _FILLER.sub("", text)
    if not text:
        return time(0, 0)
    if text in ("noon", "midday"):
        return time(12, 0)
    if text == "midnight":
        return time(0, 0)
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    hour_text, minute_text, _, meridiem = match.groups()
    if minute_text is None and meridiem is None:
        return None  # a bare number is not a time
    hour, minute = int(hour_text), int(minute_text or 0)
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        if meridiem.startswith("p") and hour != 12:
            hour += 12
        elif meridiem.startswith("a") and hour == 12:
            hour = 0
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _numeric_date(first: str, second: str, third: str, day_first: bool) -> date | None:
    a, b, c = int(first), int(second), int(third)
    if len(first) == 4:
        return date(a, b, c)
    year = _two_digit_year(c)
    if day_first:
        day, month = (b, a) if a <= 12 < b else (a, b)
    else:
        day, month = (a, b) if b <= 12 < a else (b, a)
    return date(year, month, day)


def read_datetime(
    raw: str, day_first: bool = True, tz: str | tzinfo = DEFAULT_TIMEZONE
) -> tuple[datetime, bool] | None:
    """(wall-clock datetime in ``tz``, whether a time was given) or None when unreadable.

    Raises ValueError for a date that does not exist (31/02/2026)."""
    zone_info = tz if isinstance(tz, tzinfo) else zone(tz)
    text = " ".join(raw.strip().lower().split())
    if not text:
        return None
    if _SERIAL.fullmatch(text):
        serial = float(text)
        if not _SERIAL_MIN <= serial < _SERIAL_MAX:
            return None
        moment = _EXCEL_EPOCH + timedelta(days=serial)
        moment = (moment + timedelta(seconds=30)).replace(second=0, microsecond=0)
        return moment, serial != int(serial)
    compact = _COMPACT.fullmatch(text)
    if compact is not None:
        y, m, d, hh, mm = compact.groups()
        when = datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0))
        return when, hh is not None
    iso = _ISO.fullmatch(text)
    if iso is not None:
        y, m, d, hh, mi, ss, offset = iso.groups()
        when = datetime(int(y), int(m), int(d), int(hh), int(mi), int(ss or 0))
        if offset == "z":
            aware = when.replace(tzinfo=UTC)
        else:
            sign = 1 if offset[0] == "+" else -1
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            aware = when.replace(tzinfo=timezone(sign * delta))
        local = aware.astimezone(zone_info).replace(tzinfo=None, second=0, microsecond=0)
        return local, True
    text = _WEEKDAY.sub(" ", text).strip(" ,")
    day: date | None = None
    rest = text
    for pattern in (_NUMERIC, _DAY_MONTH, _MONTH_DAY):
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groups()
        if pattern is _NUMERIC:
            day = _numeric_date(groups[0], groups[2], groups[3], day_first)
        elif pattern is _DAY_MONTH:
            day = date(_two_digit_year(int(groups[2])), _MONTHS[groups[1]], int(groups[0]))
        else:
            day = date(_two_digit_year(int(groups[2])), _MONTHS[groups[0]], int(groups[1]))
        rest = (text[: match.start()] + " " + text[match.end() :]).strip()
        break
    if day is None:
        return None
    at = _read_time(rest.replace("t", " ", 1) if rest.startswith("t") else rest)
    if at is None:
        return None
    return datetime.combine(day, at), bool(_FILLER.sub("", rest))


def parse_callback(
    raw: str,
    day_first: bool = True,
    tz: str | tzinfo = DEFAULT_TIMEZONE,
    now: datetime | None = None,
) -> tuple[str | None, CallbackIssue | None]:
    """The value to send for a typed or pasted callback date, and what is wrong with it if anything.

    A date without a zone is taken as wall-clock time in ``tz`` (the zone the PBX reads it in); one
    with a zone or offset is converted to ``tz``. A date without a time means the start of that day.
    """
    text = raw.strip()
    if not text:
        return None, None
    zone_info = tz if isinstance(tz, tzinfo) else zone(tz)
    try:
        reading = read_datetime(text, day_first, zone_info)
    except (ValueError, OverflowError):
        return None, CallbackIssue(
            "error", f"The callback date '{text}' does not exist; check the day and the month."
        )
    if reading is None:
        return None, CallbackIssue(
            "error",
            f"The callback date '{text}' could not be read. Type it like {EXAMPLE} "
            "or 2026-12-25 09:30.",
        )
    when, has_time = reading
    value = when.strftime(SEND_FORMAT)
    current = now if now is not None else datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=zone_info)
    local_now = current.astimezone(zone_info).replace(tzinfo=None)
    past = when.date() < local_now.date() if not has_time else when < local_now
    if past:
        return value, CallbackIssue(
            "warning",
            f"The callback date {value} is in the past; the dialler will call the lead as soon "
            "as it can.",
        )
    return value, None
