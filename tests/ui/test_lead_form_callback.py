"""The lead form's callback: offered and limited on the PBX's clock (the connection's zone),
never the PC's; across Sydney's daylight-saving changes and in a zone without them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from pytestqt.qtbot import QtBot

from noojee_desk.core.leads.dates import zone
from noojee_desk.core.leads.layouts import default_layout
from noojee_desk.core.leads.validate import ValidationSettings, Validator
from noojee_desk.ui.lead_form import LeadForm


def _form(qtbot: QtBot, tz: str, now: datetime) -> LeadForm:
    form = LeadForm()
    qtbot.addWidget(form)
    form.clock = lambda: now
    layout = default_layout()
    validator = Validator(layout, ValidationSettings(timezone=tz), clock=lambda: now)
    form.set_layout(layout, validator, tz)
    return form


def _shown(form: LeadForm) -> str:
    return form.callback.dateTime().toString("yyyy-MM-dd HH:mm")


@pytest.mark.parametrize(
    ("tz", "instant", "offered"),
    [
        ("Australia/Sydney", "2026-10-03T15:30:00+00:00", "2026-10-04 03:30"),  # DST starts
        ("Australia/Sydney", "2026-04-04T15:30:00+00:00", "2026-04-05 02:30"),  # DST ends
        ("Australia/Brisbane", "2026-10-03T15:30:00+00:00", "2026-10-04 02:30"),  # no DST
        ("Australia/Sydney", "2026-12-01T22:01:00+00:00", "2026-12-02 10:01"),
    ],
)
def test_the_callback_offered_is_now_plus_an_hour_in_the_pbx_zone(
    qtbot: QtBot, tz: str, instant: str, offered: str
) -> None:
    now = datetime.fromisoformat(instant)
    form = _form(qtbot, tz, now)
    assert _shown(form) == offered
    form.callback_on.setChecked(True)
    assert form.values()["njCallBackDate"] == offered
    check = form.check()
    assert check is not None
    assert not any("past" in p.message for p in check.problems), check.problems
    # The earliest it takes is the start of that day on the PBX's clock.
    earliest = form.callback.minimumDateTime().toString("yyyy-MM-dd HH:mm")
    assert earliest == offered[:10] + " 00:00"


def test_ticking_later_offers_an_hour_from_then(qtbot: QtBot) -> None:
    now = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # 10:00 in Sydney
    form = _form(qtbot, "Australia/Sydney", now)
    assert _shown(form) == "2026-06-01 11:00"
    form.clock = lambda: now + timedelta(hours=3)  # the form stood open all morning
    form.callback_on.setChecked(True)
    assert _shown(form) == "2026-06-01 14:00"


def _last_line_in_zone(script: str, pc_zone: str) -> object:
    """Run ``script`` in a real process with the PC's zone set; its last line, read as JSON."""
    env = dict(os.environ, TZ=pc_zone, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("pc_zone", ["UTC", "America/Los_Angeles"])
def test_a_pc_in_another_zone_offers_sydney_time(pc_zone: str) -> None:
    """A real process with the PC's zone set (TZ, tzset) and the real clock."""
    script = (
        "import json, time\n"
        "time.tzset()\n"
        "from datetime import UTC, datetime\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from noojee_desk.core.leads.layouts import default_layout\n"
        "from noojee_desk.core.leads.validate import ValidationSettings, Validator\n"
        "from noojee_desk.ui.lead_form import LeadForm\n"
        "before = datetime.now(UTC)\n"
        "form = LeadForm()\n"
        "layout = default_layout()\n"
        "form.set_layout(layout, Validator(layout, ValidationSettings(timezone="
        "'Australia/Sydney')), 'Australia/Sydney')\n"
        "form.callback_on.setChecked(True)\n"
        "print(json.dumps([time.strftime('%z'), form.values()['njCallBackDate'], "
        "before.isoformat()]))\n"
    )
    _offset, sent, before = _last_line_in_zone(script, pc_zone)
    sydney = datetime.fromisoformat(before).astimezone(zone("Australia/Sydney"))
    expected = (sydney + timedelta(hours=1)).replace(tzinfo=None, second=0, microsecond=0)
    got = datetime.strptime(sent, "%Y-%m-%d %H:%M")
    assert abs(got - expected) <= timedelta(minutes=1), (sent, expected)


@pytest.mark.parametrize("pc_zone", ["UTC", "Australia/Sydney", "America/Los_Angeles"])
def test_a_lead_put_back_keeps_its_callback_on_any_pc_clock(pc_zone: str) -> None:
    """A lead the window could not queue goes back into the form: its callback (the PBX's wall
    clock) reads the same whatever zone the PC is in (a real process with TZ set)."""
    script = (
        "import json, time\n"
        "time.tzset()\n"
        "from datetime import UTC, datetime\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from noojee_desk.core.leads.layouts import default_layout\n"
        "from noojee_desk.core.leads.validate import ValidationSettings, Validator\n"
        "from noojee_desk.ui.lead_form import FormLead, LeadForm\n"
        "form = LeadForm()\n"
        "form.clock = lambda: datetime(2026, 12, 1, 22, 0, tzinfo=UTC)\n"
        "layout = default_layout()\n"
        "form.set_layout(layout, Validator(layout, ValidationSettings(timezone="
        "'Australia/Sydney')), 'Australia/Sydney')\n"
        "lead = FormLead({'Name': 'Ann Lee', 'njCallBackDate': '2026-12-20 10:00'}, "
        "frozenset(), False)\n"
        "form.queue_failed(lead, 'The disk is full.')\n"
        "print(json.dumps(form.values().get('njCallBackDate')))\n"
    )
    assert _last_line_in_zone(script, pc_zone) == "2026-12-20 10:00"


def test_the_callback_box_shows_a_near_time_before_any_template(qtbot: QtBot) -> None:
    """A form with no template yet (nothing chosen) offers an hour from now, not year 2000."""
    from PySide6.QtCore import QDateTime

    form = LeadForm()
    qtbot.addWidget(form)
    shown = form.callback.dateTime()
    now = QDateTime.currentDateTime()
    assert abs(now.secsTo(shown)) < 2 * 24 * 3600, shown.toString()
