"""Callback dates: the formats people type or paste, the zone they are sent in, the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noojee_desk.core.leads.dates import parse_callback, zone

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # 10:00 on 1 June 2026 in Sydney


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("25/12/2026 9:30am", "2026/12/25 09:30"),
        ("25/12/2026 9:30 PM", "2026/12/25 21:30"),
        ("25/12/2026 at 9.30pm", "2026/12/25 21:30"),
        ("25-12-2026 09:30", "2026/12/25 09:30"),
        ("25.12.26 14:00", "2026/12/25 14:00"),
        ("2026-12-25 09:30", "2026/12/25 09:30"),
        ("2026-12-25T09:30:00", "2026/12/25 09:30"),
        ("2026/12/25 09:30", "2026/12/25 09:30"),  # already the PBX format
        ("25 Dec 2026 9:30 AM", "2026/12/25 09:30"),
        ("Friday, 25 December 2026 9am", "2026/12/25 09:00"),
        ("December 25, 2026 noon", "2026/12/25 12:00"),
        ("25-Dec-26", "2026/12/25 00:00"),
        ("9:30am 25/12/2026", "2026/12/25 09:30"),
        ("46381.395833", "2026/12/25 09:30"),  # an Excel serial date and time
        ("46381", "2026/12/25 00:00"),
        ("20261225", "2026/12/25 00:00"),
        ("12/25/2026 5pm", "2026/12/25 17:00"),  # month first, but only one reading is possible
    ],
)
def test_formats_people_type_or_paste(raw: str, sent: str) -> None:
    assert parse_callback(raw, True, "Australia/Sydney", NOW) == (sent, None)


def test_day_first_is_the_default_and_a_setting() -> None:
    assert parse_callback("05/06/2026", True, "Australia/Sydney", NOW)[0] == "2026/06/05 00:00"
    assert parse_callback("05/06/2026", False, "Australia/Sydney", NOW)[0] == "2026/05/06 00:00"


def test_a_time_with_a_zone_is_sent_in_the_pbx_zone() -> None:
    assert parse_callback("2026-12-25T09:30:00Z", True, "Australia/Sydney", NOW)[0] == (
        "2026/12/25 20:30"  # daylight saving time in Sydney
    )
    assert parse_callback("2026-12-25 09:30+08:00", True, "Australia/Perth", NOW)[0] == (
        "2026/12/25 09:30"
    )
    assert parse_callback("2026-12-25T09:30:00+0800", True, "Australia/Brisbane", NOW)[0] == (
        "2026/12/25 11:30"
    )


def test_past_dates_are_a_warning() -> None:
    sent, issue = parse_callback("1/6/2026 9am", True, "Australia/Sydney", NOW)
    assert sent == "2026/06/01 09:00"
    assert issue is not None
    assert issue.severity == "warning"
    assert "past" in issue.message
    # Later the same day, and a date without a time on the current day, are not in the past.
    assert parse_callback("1/6/2026 11am", True, "Australia/Sydney", NOW) == (
        "2026/06/01 11:00",
        None,
    )
    assert parse_callback("1/6/2026", True, "Australia/Sydney", NOW) == ("2026/06/01 00:00", None)
    # "Now" is compared in the PBX zone: 10:00 in Sydney is still 08:00 in Perth.
    assert parse_callback("1/6/2026 9am", True, "Australia/Perth", NOW)[1] is None


def test_now_without_zone_is_read_in_the_pbx_zone() -> None:
    naive_now = datetime(2026, 6, 1, 10, 0)
    assert parse_callback("1/6/2026 9am", True, "Australia/Sydney", naive_now)[1] is not None
    assert parse_callback("1/6/2026 11am", True, "Australia/Sydney", naive_now)[1] is None


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("31/02/2026", "does not exist"),
        ("next tuesday", "could not be read"),
        ("25/12/2026 13:30pm", "could not be read"),
        ("25/12/2026 25:00", "could not be read"),
        ("99999", "could not be read"),
        ("9:30am", "could not be read"),  # a time without a date
    ],
)
def test_unreadable_dates_are_errors(raw: str, words: str) -> None:
    sent, issue = parse_callback(raw, True, "Australia/Sydney", NOW)
    assert sent is None
    assert issue is not None
    assert issue.severity == "error"
    assert words in issue.message


def test_empty_is_nothing() -> None:
    assert parse_callback("  ", True, "Australia/Sydney", NOW) == (None, None)


def test_zone_falls_back_to_the_default() -> None:
    assert str(zone("Australia/Perth")) == "Australia/Perth"
    assert str(zone("Not/AZone")) == "Australia/Sydney"
    assert parse_callback("25/12/2026 9am", True, timezone(timedelta(hours=10)), NOW) == (
        "2026/12/25 09:00",
        None,
    )


@given(st.text(max_size=40), st.booleans())
def test_any_text_gives_a_value_or_a_reason(raw: str, day_first: bool) -> None:
    sent, issue = parse_callback(raw, day_first, "Australia/Sydney", NOW)
    if sent is None and raw.strip():
        assert issue is not None
        assert issue.severity == "error"
    if sent is not None:
        assert datetime.strptime(sent, "%Y/%m/%d %H:%M")


# -- the PBX's clock: the form's default and earliest callback ------------------------------------

from noojee_desk.core.leads.dates import default_callback, earliest_callback, wall_clock  # noqa: E402


@pytest.mark.parametrize(
    ("tz", "instant", "wall", "offered"),
    [
        # Sydney, the night summer time starts (4 Oct 2026, 02:00 AEST -> 03:00 AEDT).
        ("Australia/Sydney", "2026-10-03T15:30Z", "2026-10-04 01:30", "2026-10-04 03:30"),
        # Sydney, the night it ends (5 Apr 2026, 03:00 AEDT -> 02:00 AEST).
        ("Australia/Sydney", "2026-04-04T15:30Z", "2026-04-05 02:30", "2026-04-05 02:30"),
        ("Australia/Sydney", "2026-12-01T22:01Z", "2026-12-02 09:01", "2026-12-02 10:01"),
        # Brisbane has no summer time: the same instants, an hour on the wall each.
        ("Australia/Brisbane", "2026-10-03T15:30Z", "2026-10-04 01:30", "2026-10-04 02:30"),
        ("Australia/Brisbane", "2026-04-04T15:30Z", "2026-04-05 01:30", "2026-04-05 02:30"),
    ],
)
def test_the_default_callback_is_an_hour_on_the_pbx_clock(
    tz: str, instant: str, wall: str, offered: str
) -> None:
    now = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    assert wall_clock(tz, now).strftime("%Y-%m-%d %H:%M") == wall
    assert default_callback(tz, now).strftime("%Y-%m-%d %H:%M") == offered
    assert earliest_callback(tz, now).strftime("%Y-%m-%d %H:%M") == wall[:10] + " 00:00"
    # What it offers is never "in the past" on that clock.
    _value, issue = parse_callback(
        default_callback(tz, now).strftime("%Y-%m-%d %H:%M"), True, tz, now
    )
    assert issue is None


@pytest.mark.parametrize("pc_zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_the_pc_zone_changes_nothing(pc_zone: str) -> None:
    """The PC on another zone (TZ and tzset in a fresh process): Sydney's clock still."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, time\n"
        "from datetime import UTC, datetime, timedelta\n"
        "from zoneinfo import ZoneInfo\n"
        "time.tzset()\n"
        "from noojee_desk.core.leads.dates import default_callback\n"
        "before = datetime.now(UTC)\n"
        "offered = default_callback('Australia/Sydney')\n"
        "print(json.dumps([time.strftime('%z'), offered.isoformat(), before.isoformat()]))\n"
    )
    env = dict(os.environ, TZ=pc_zone)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    offset, offered, before = json.loads(done.stdout)
    if pc_zone == "Asia/Kolkata":
        assert offset == "+0530"  # the process really ran in that zone
    sydney = datetime.fromisoformat(before).astimezone(zone("Australia/Sydney"))
    expected = (sydney + timedelta(hours=1)).replace(tzinfo=None, second=0, microsecond=0)
    assert abs(datetime.fromisoformat(offered) - expected) <= timedelta(minutes=1)
