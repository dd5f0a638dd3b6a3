"""``noojee-desk send``: reading files, mapping, dry runs, reports, exit codes, resume, Ctrl+C."""

from __future__ import annotations

import contextlib
import csv
import http.server
import json
import os
import pty
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import openpyxl
import pytest
from helpers.waits import wait_until

from noojee_desk import send
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import LeadQuery, State
from noojee_desk.core.desk import Desk
from noojee_desk.core.leads.layouts import FieldLayout, default_layout
from noojee_desk.core.leads.paste import GridRow, check_rows, prepare_table
from noojee_desk.core.leads.spreadsheets import read_file
from noojee_desk.core.leads.validate import LeadCheck
from noojee_desk.core.paths import resolve
from noojee_desk.core.profiles.secrets import KeyStore
from noojee_desk.core.profiles.settings import Profile, Settings, SettingsStore
from noojee_desk.sim.server import SimThread

TARGET_ARGS = ["--template", "3", "--campaign", "42", "--allocation", "101"]
HEADER = "Name,FirstPhone,City"
ROWS = [
    "Ann Lee,0412000001,Melbourne",
    "Bob Ray,,Sydney",  # no phone: invalid
    "Cy Poe,0299999999,Perth",  # on the emulator's DNC list: 104
    "Di Roe,0412000004,<NO CHANGE>",  # invalid (108)
    "Ed Fox,0412000005,Hobart",
]


@pytest.fixture
def pbx() -> Iterator[SimThread]:
    with SimThread(capacity=4, min_service=0.005, jitter=0.0, seed=3) as sim:
        yield sim


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(send.KEY_ENV, "demo-key")
    return "demo-key"


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = send.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(out: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines()]
    *rows, last = lines
    return rows, last["summary"]


def test_dry_run_validates_without_sending_or_a_queue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "leads.csv", ROWS)
    code, out, _ = run(
        [str(path), "--server", "http://127.0.0.1:9", *TARGET_ARGS, "--dry-run", "--json"], capsys
    )
    rows, summary = json_lines(out)
    assert code == send.EXIT_SOME_NOT_DELIVERED
    assert [r["status"] for r in rows] == ["pending", "invalid", "pending", "invalid", "pending"]
    assert [r["row"] for r in rows] == [2, 3, 4, 5, 6]  # the file's rows: the header is row 1
    assert "phone" in rows[1]["message"]
    assert "108" in rows[3]["message"]
    assert summary["invalid"] == 2
    assert summary["pending"] == 3
    assert not resolve().outbox.exists()


# The file's rows as a spreadsheet shows them: 1 the header, 3 and 5 blank, 6 only separators.
NUMBERED = [
    "Ann Lee,0412000001,Melbourne",  # row 2
    "",
    "Bob Ray,,Sydney",  # row 4: no phone
    "",
    " , ,",
    "Cy Poe,0412 000 001,Perth",  # row 7: Ann's number again
]


def _numbered_file(tmp_path: Path, suffix: str) -> Path:
    if suffix == ".csv":
        return write_csv(tmp_path / "leads.csv", NUMBERED)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for number, line in enumerate([HEADER, *NUMBERED], start=1):
        for column, value in enumerate(line.split(","), start=1):
            if value.strip():
                sheet.cell(number, column, value)
    path = tmp_path / "leads.xlsx"
    workbook.save(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_send_names_each_row_by_its_row_in_the_file_as_the_grid_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    path = _numbered_file(tmp_path, suffix)
    argv = [str(path), "--server", "https://pbx.example", *TARGET_ARGS, "--dry-run"]
    code, out, _ = run([*argv, "--json"], capsys)
    rows, summary = json_lines(out)
    assert code == send.EXIT_SOME_NOT_DELIVERED
    assert [(r["row"], r["status"]) for r in rows] == [
        (2, "pending"),
        (4, "invalid"),
        (7, "pending"),
    ]
    assert "also in row 2 " in rows[2]["message"]  # the other row by its number in the file
    assert summary["rows"] == 3
    # The grid numbers the same file's rows the same way.
    table = read_file(path)
    prepared = prepare_table(table, default_layout(), {}, first_id=1, source="x")
    assert [row.source_row for row in prepared.rows] == [2, 4, 7]
    _code, text, _ = run(argv, capsys)
    assert "row 4: invalid" in text


def test_a_reading_problem_is_named_by_its_row_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], "", "Ed Fox,0412000005,Hobart,extra"])
    _code, out, err = run(
        [str(path), "--server", "https://pbx.example", *TARGET_ARGS, "--dry-run"], capsys
    )
    assert "row 4: This row has 4 cells" in out + err


def test_a_file_too_big_to_check_in_the_memory_free_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows within the read caps may still need more memory than is free to check."""
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])

    def no_memory(*_args: object, **_kwargs: object) -> object:
        raise MemoryError

    monkeypatch.setattr(send.Validator, "validate_rows", no_memory)
    code, out, err = run(
        [str(path), "--server", "https://pbx.example", *TARGET_ARGS, "--dry-run"], capsys
    )
    assert code == send.EXIT_CONFIG
    assert "too big to check in the memory this computer has free" in err
    assert "Traceback" not in out + err


def test_dry_run_of_a_clean_file_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])
    code, out, _ = run(
        [str(path), "--server", "https://pbx.example", *TARGET_ARGS, "--dry-run"], capsys
    )
    assert code == send.EXIT_OK
    assert "Checked: 2 rows" in out


def test_send_reports_every_row_and_agrees_with_the_pbx(
    tmp_path: Path, pbx: SimThread, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "leads.csv", ROWS)
    code, out, _ = run([str(path), "--server", pbx.url, *TARGET_ARGS, "--json"], capsys)
    rows, summary = json_lines(out)
    assert code == send.EXIT_SOME_NOT_DELIVERED
    assert [(r["row"], r["status"], r["code"]) for r in rows] == [
        (2, "delivered", 0),
        (3, "invalid", None),
        (4, "rejected", 104),
        (5, "invalid", None),
        (6, "delivered", 0),
    ]
    assert rows[2]["message"].startswith("The phone number is on the Do Not Call list.")
    assert summary == {
        "rows": 5,
        "delivered": 2,
        "skipped": 0,
        "rejected": 1,
        "duplicate": 0,
        "invalid": 2,
        "held": 0,
        "failed": 0,
        "pending": 0,
        "seconds": summary["seconds"],
        "batch": 1,
    }
    inserted = {lead["external_id"]: lead for lead in pbx.state()["leads"]}
    delivered = {r["external_id"]: r for r in rows if r["status"] == "delivered"}
    assert set(inserted) == set(delivered)
    assert inserted[rows[0]["external_id"]]["fields"]["Name"] == "Ann Lee"
    assert inserted[rows[0]["external_id"]]["fields"]["City"] == "Melbourne"


def test_all_delivered_exits_0_with_a_readable_summary(
    tmp_path: Path, pbx: SimThread, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])
    code, out, _ = run([str(path), "--server", pbx.url, *TARGET_ARGS], capsys)
    assert code == send.EXIT_OK
    assert out.startswith("Done: 2 rows in ")
    assert "2 delivered" in out


def test_running_the_same_command_again_sends_nothing_twice(
    tmp_path: Path, pbx: SimThread, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])
    argv = [str(path), "--server", pbx.url, *TARGET_ARGS, "--json"]
    assert run(argv, capsys)[0] == send.EXIT_OK
    code, out, _ = run(argv, capsys)
    rows, summary = json_lines(out)
    assert code == send.EXIT_OK
    assert [r["status"] for r in rows] == ["delivered", "delivered"]
    assert summary["batch"] == 1
    assert len(pbx.state()["leads"]) == 2
    assert pbx.state()["insert_calls"] == 2


def test_tsv_and_xlsx_files_map_case_insensitively_with_map_and_phone_fields(
    tmp_path: Path, pbx: SimThread, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv = tmp_path / "copied.txt"
    tsv.write_text(
        "Full name\tMobile no\tNJPRIORITY\tjunk\r\nAnn\t0412 000 011\t5\tx\r\n", encoding="utf-8"
    )
    code, out, _ = run(
        [
            str(tsv),
            "--server",
            pbx.url,
            *TARGET_ARGS,
            "--map",
            "full NAME=Name",
            "--map",
            "mobile no=FirstPhone",
            "--map",
            "Junk=",
            "--json",
        ],
        capsys,
    )
    assert code == send.EXIT_OK, out
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "Cell", "Other phone"])
    sheet.append(["Bo", "0412000012", "0412000099"])
    xlsx = tmp_path / "leads.xlsx"
    book.save(xlsx)
    code, out, _ = run(
        [str(xlsx), "--server", pbx.url, *TARGET_ARGS, "--map", "cell=FirstPhone", "--json"],
        capsys,
    )
    assert code == send.EXIT_OK, out
    fields = [lead["fields"] for lead in pbx.state()["leads"]]
    assert fields[0]["Name"] == "Ann"
    assert fields[0]["FirstPhone"] == "0412000011"
    assert fields[0]["njPriority"] == "5"
    assert "junk" not in fields[0]
    assert fields[1]["FirstPhone"] == "0412000012"
    # A phone heading goes to the template's next free phone field, as in the app's grid.
    assert fields[1]["SecondPhone"] == "0412000099"


def test_a_stored_template_layout_maps_headings_in_any_case(
    tmp_path: Path, pbx: SimThread, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(profiles=[Profile("office", server_url=pbx.url)])
    settings.layouts[f"{pbx.url.lower()}|3"] = {
        "fields": [{"name": "Name"}, {"name": "FirstPhone", "phone": True}]
    }
    SettingsStore(resolve().settings).save(settings)
    path = write_csv(tmp_path / "l.csv", ["Al,0412000021,x"], header="NAME,firstphone,Extra")
    code, out, err = run([str(path), "--server", pbx.url, *TARGET_ARGS], capsys)
    assert code == send.EXIT_OK, out + err
    assert "column 'Extra' is not sent" in err
    (lead,) = pbx.state()["leads"]
    assert lead["fields"] == {
        "Name": "Al",
        "FirstPhone": "0412000021",
        "njExternalLeadId": lead["external_id"],
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--map", "Nope=Name"], "no column is called 'Nope'"),
        (["--map", "Name"], "SOURCE=FIELD"),
        (["--phone-fields", "Mobile"], "no column is sent as Mobile"),
        (["--template", "x"], "not a whole number"),
        (["--export", "results.txt"], "name a .csv or .xlsx file"),
        (["--export", "results.csv", "--dry-run"], "a dry run sends nothing"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    path = write_csv(tmp_path / "leads.csv", ROWS)
    code, _, err = run([str(path), "--server", "http://127.0.0.1:9", *TARGET_ARGS, *extra], capsys)
    assert code == send.EXIT_CONFIG
    assert message in err


def test_configuration_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "leads.csv", ROWS)
    monkeypatch.delenv(send.KEY_ENV, raising=False)
    code, _, err = run([str(path), "--server", "http://127.0.0.1:9", *TARGET_ARGS], capsys)
    assert code == send.EXIT_CONFIG
    assert send.KEY_ENV in err
    monkeypatch.setenv(send.KEY_ENV, "k")
    code, _, err = run([str(path), "--server", "http://pbx.example.com", *TARGET_ARGS], capsys)
    assert code == send.EXIT_CONFIG
    assert "HTTPS" in err
    code, _, err = run(
        [str(tmp_path / "missing.csv"), "--server", "https://x", *TARGET_ARGS], capsys
    )
    assert code == send.EXIT_CONFIG
    assert "no such file" in err
    empty = write_csv(tmp_path / "empty.csv", [])
    code, _, err = run([str(empty), "--server", "https://x", *TARGET_ARGS], capsys)
    assert code == send.EXIT_CONFIG
    assert "nothing to send" in err
    assert send.main(["--help"]) == 0


def test_a_rejected_key_exits_2_and_keeps_the_leads_queued(
    tmp_path: Path,
    pbx: SimThread,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(send.KEY_ENV, "wrong-key")
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])
    code, out, err = run([str(path), "--server", pbx.url, *TARGET_ARGS, "--json"], capsys)
    rows, _ = json_lines(out)
    assert code == send.EXIT_CONFIG
    assert "Needs attention" in err
    assert "wrong-key" not in out + err
    assert [r["status"] for r in rows] == ["pending", "pending"]
    monkeypatch.setenv(send.KEY_ENV, "demo-key")
    code, out, _ = run([str(path), "--server", pbx.url, *TARGET_ARGS, "--json"], capsys)
    assert code == send.EXIT_OK
    assert len(pbx.state()["leads"]) == 2


@pytest.mark.keyring
def test_the_key_can_come_from_the_keyring_of_a_profile(
    tmp_path: Path,
    pbx: SimThread,
    os_keyring: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from noojee_desk import APP_ID

    monkeypatch.delenv(send.KEY_ENV, raising=False)
    profile = f"send-test-{os.getpid()}"
    os_keyring.set_password(APP_ID, profile, "demo-key")
    try:
        path = write_csv(tmp_path / "leads.csv", [ROWS[0]])
        code, _out, err = run(
            [str(path), "--server", pbx.url, *TARGET_ARGS, "--profile", profile], capsys
        )
        assert code == send.EXIT_OK, err
    finally:
        os_keyring.delete_password(APP_ID, profile)


def test_ctrl_c_leaves_unsent_leads_queued_and_exits_3(tmp_path: Path) -> None:
    """A real process and a real SIGINT; the next run sends the rest, nothing twice."""
    rows = [f"P{i},0413{i:06d},Town" for i in range(40)]
    path = write_csv(tmp_path / "leads.csv", rows)
    home = tmp_path / "home"
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home), NOOJEE_API_KEY="demo-key")
    with SimThread(capacity=1, min_service=0.1, jitter=0.0) as sim:
        argv = [sys.executable, "-m", "noojee_desk", "send", str(path), "--server", sim.url]
        argv += [*TARGET_ARGS, "--json"]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(
            lambda: len(sim.state(include_leads=False)["queue_waits"]) >= 3,
            limit=20,
            what="the sending to start",
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == send.EXIT_INTERRUPTED, err
        _rows_out, summary = json_lines(out.decode())
        assert summary["pending"] > 0
        assert summary["delivered"] + summary["pending"] == 40, summary
        with Outbox(resolve(home).outbox) as box:
            assert box.counts()[State.SENDING] == 0  # released, flagged unknown
        again = subprocess.run(argv, env=env, capture_output=True, timeout=60)
        assert again.returncode == send.EXIT_OK, again.stderr
        leads = sim.state()["leads"]
    assert len(leads) == 40
    assert len({lead["external_id"] for lead in leads}) == 40
    with Outbox(resolve(home).outbox) as box:
        assert box.count(LeadQuery(states=frozenset({State.DELIVERED}))) == 40


@pytest.mark.parametrize("heading", ["Tel", "Cell", "Mob", "Home Ph", "Landline", "Mobile"])
def test_send_knows_phone_headings_as_the_app_does(
    heading: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from noojee_desk.core.leads.layouts import is_phone_name

    assert is_phone_name(heading)  # the app's rule
    path = write_csv(tmp_path / "leads.csv", ["Ann Lee,0412000001"], header=f"Name,{heading}")
    code, out, err = run(
        [str(path), "--server", "https://pbx.example", *TARGET_ARGS, "--dry-run"], capsys
    )
    assert code == send.EXIT_OK, err
    assert "Checked: 1 rows" in out


def test_a_set_up_mistake_stops_send_after_a_few_calls_and_the_fix_delivers_all(
    tmp_path: Path, pbx: SimThread, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"Person {i},04{i:08d}" for i in range(200)]
    path = write_csv(tmp_path / "referrals.csv", rows, header="Name,Mobile")
    target = ["--template", "18", "--campaign", "80", "--allocation", "200"]
    base = [str(path), "--server", pbx.url, *target, "--retry-scale", "0.05"]
    code, out, err = run([*base, "--dry-run"], capsys)
    assert "Mobile -> referrer_phone (phone field)" in err  # the guess, shown before sending
    code, out, err = run([*base, "--json"], capsys)
    assert code == send.EXIT_SETUP, err
    assert "Stopped:" in err
    assert "102" in err
    results, summary = json_lines(out)
    assert len(results) == 200
    assert {r["status"] for r in results} <= {"rejected", "held"}
    assert summary["held"] + summary["rejected"] == 200
    assert pbx.state()["insert_calls_by_template"]["18"] <= 10
    fixed = [*base, "--phone-fields", "contact_a", "--map", "Mobile=contact_a", "--json"]
    code, out, err = run(fixed, capsys)
    assert code == send.EXIT_OK, err
    leads = [lead for lead in pbx.state()["leads"] if lead["template_id"] == 18]
    assert len(leads) == 200
    assert len({lead["fields"]["contact_a"] for lead in leads}) == 200


# -- the grid, the form and send check alike -------------------------------------------------------

RANGE_ROWS = [
    ("Ann Lee", "0412 345 678", ""),  # a known mobile range: clean
    ("Ben Ng", "0443 464 097", ""),  # a possible length in a range the plans do not list
    ("Cy Poe", "+61 443 464 098", "0383218199"),
    ("Di Roe", "0412 345", ""),  # too few digits: always an error
    ("Ed Fox", "call me", "0500 000 000"),  # letters: an error, whatever the second number
]


@pytest.mark.parametrize("strict", [False, True], ids=["warn", "strict"])
def test_the_grid_the_form_and_send_agree_on_unknown_ranges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], strict: bool
) -> None:
    server = "https://pbx.example.com"
    settings = Settings(profiles=[Profile("site", server_url=server, strict_ranges=strict)])
    layout = {
        "fields": [
            {"name": "Name"},
            {"name": "FirstPhone", "phone": True},
            {"name": "SecondPhone", "phone": True},
        ],
        "confirmed": True,
    }
    settings.layouts[f"{server}|3"] = layout
    paths = resolve()
    SettingsStore(paths.settings).save(settings)
    header = "Name,FirstPhone,SecondPhone"
    path = write_csv(tmp_path / "leads.csv", [",".join(r) for r in RANGE_ROWS], header=header)
    argv = [str(path), "--server", server, *TARGET_ARGS, "--profile", "site", "--dry-run"]
    code, out, err = run([*argv, "--json"], capsys)
    rows, _summary = json_lines(out)

    desk = Desk(paths, SettingsStore(paths.settings), KeyStore())
    profile = desk.settings.profile("site")
    assert profile is not None
    assert profile.strict_ranges is strict
    validator = desk.validator(FieldLayout.from_dict(layout), profile)
    grid = check_rows(
        validator,
        ["Name", "FirstPhone", "SecondPhone"],
        [GridRow(n, list(cells), n) for n, cells in enumerate(RANGE_ROWS, 1)],
    )
    grid_checks = [check for _rid, _version, check in grid.checks]
    form_checks = [
        validator.validate_one(dict(zip(["Name", "FirstPhone", "SecondPhone"], r, strict=True)))
        for r in RANGE_ROWS
    ]

    def severities(check: LeadCheck) -> list[tuple[str | None, str]]:
        return sorted((p.field, p.severity) for p in check.problems)

    assert [severities(c) for c in grid_checks] == [severities(c) for c in form_checks]
    sent_status = ["invalid" if not c.ok else "pending" for c in grid_checks]
    assert [r["status"] for r in rows] == sent_status, err
    for check, row in zip(grid_checks, rows, strict=True):
        if check.ok:
            for warning in check.warnings:
                assert warning.message in row["message"]
        else:
            for error in check.errors:
                assert error.message in row["message"]
    unknown = [severities(c) for c in grid_checks[1:3]]
    if strict:
        assert sent_status == ["pending", "invalid", "invalid", "invalid", "invalid"]
        assert unknown == [[("FirstPhone", "error")], [("FirstPhone", "error")]]
        assert "do not match any number range" in rows[1]["message"]
    else:
        assert sent_status == ["pending", "pending", "pending", "invalid", "invalid"]
        assert unknown == [[("FirstPhone", "warning")], [("FirstPhone", "warning")]]
        assert "may not exist" in rows[1]["message"]
    assert code == send.EXIT_SOME_NOT_DELIVERED


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("https://pbx.example.com:abc", "port after ':' must be a number"),
        ("https://[pbx", "IPv6"),
        ("user:pass@host", "without a user name, password or '@'"),
        ("https://a@b", "without a user name, password or '@'"),
        ("http://pbx.example.com", "the API key travels in the address"),
    ],
)
def test_an_unusable_server_address_exits_2_with_a_message(
    tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str], server: str, message: str
) -> None:
    path = write_csv(tmp_path / "leads.csv", [ROWS[0]])
    for extra in ([], ["--dry-run"]):
        code, out, err = run([str(path), "--server", server, *TARGET_ARGS, *extra], capsys)
        assert code == send.EXIT_CONFIG
        assert message in err
        assert "Traceback" not in err + out
        assert "pass" not in err.replace("password", "")


# -- exactly once across runs, one sender per queue -----------------------------------------------


def test_an_edited_file_sends_only_the_rows_not_delivered_and_resend_sends_again(
    tmp_path: Path, pbx: SimThread, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "leads.csv", ROWS)
    argv = [str(path), "--server", pbx.url, *TARGET_ARGS, "--json"]
    code, _out, _err = run(argv, capsys)
    assert len(pbx.state()["leads"]) == 2
    fixed = list(ROWS)
    fixed[1] = "Bob Ray,0412000002,Sydney"  # the row without a phone, fixed
    write_csv(path, fixed)
    code, out, _err = run(argv, capsys)
    rows, summary = json_lines(out)
    assert [(r["row"], r["status"]) for r in rows] == [
        (2, "skipped"),
        (3, "delivered"),
        (4, "rejected"),  # 104 again: rejected is not delivered
        (5, "invalid"),
        (6, "skipped"),
    ]
    today = time.strftime("%Y-%m-%d")
    assert rows[0]["message"].startswith(f"Already delivered on {today} ")
    assert summary["skipped"] == 2
    assert summary["delivered"] == 1
    assert code == send.EXIT_SOME_NOT_DELIVERED  # the 104 and the invalid row
    leads = pbx.state()["leads"]
    assert len(leads) == 3
    assert len({lead["external_id"] for lead in leads}) == 3
    # --resend: every valid row again, as new leads; the PBX refuses known phones (105) ...
    code, out, _err = run([*argv, "--resend"], capsys)
    rows, summary = json_lines(out)
    assert [(r["row"], r["status"], r["code"]) for r in rows if r["status"] != "invalid"] == [
        (2, "rejected", 105),
        (3, "rejected", 105),
        (4, "rejected", 104),
        (6, "rejected", 105),
    ]
    # ... unless duplicates are allowed too.
    code, out, _err = run([*argv, "--resend", "--allow-duplicates"], capsys)
    _rows, summary = json_lines(out)
    assert summary["delivered"] == 3
    assert summary["skipped"] == 0
    assert len(pbx.state()["leads"]) == 6


def _send_argv(path: Path, url: str, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "noojee_desk", "send", str(path), "--server", url]
    return [*argv, *TARGET_ARGS, "--json", *extra]


def test_two_sends_of_the_same_file_started_together_queue_it_once(tmp_path: Path) -> None:
    rows = [f"P{i},0413{i:06d},Town" for i in range(2000)]
    path = write_csv(tmp_path / "leads.csv", rows)
    home = tmp_path / "home"
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home), NOOJEE_API_KEY="demo-key")
    with SimThread(capacity=16, min_service=0.0, jitter=0.0) as sim:
        argv = _send_argv(path, sim.url, "--retry-scale", "0.05")
        procs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outputs = [proc.communicate(timeout=240) for proc in procs]
        leads = sim.state(include_leads=True)["leads"]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == send.EXIT_OK, err.decode()
        _rows, summary = json_lines(out.decode())
        assert summary["delivered"] == 2000, summary
    assert len(leads) == 2000
    with Outbox(resolve(home).outbox) as box:
        assert len(box.batches()) == 1
        assert box.count() == 2000


HOLDER = """
import asyncio, signal, sys
from noojee_desk.core.delivery import locks, outbox
from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.dispatcher import Dispatcher, LeadChanged
from noojee_desk.core.delivery.policy import RetryTiming

async def main():
    locks.PROGRAM = "the test's window"
    box = outbox.Outbox(sys.argv[1])
    client = NoojeeClient(sys.argv[2], "demo-key")
    dispatcher = Dispatcher(box, client, "P", timing=RetryTiming(probe_base=0.05, probe_cap=0.1))
    def on_event(event):
        if isinstance(event, LeadChanged) and event.state.value == "delivered":
            print("delivered", event.lead_id, flush=True)
    dispatcher.subscribe(on_event)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(dispatcher.stop()))
    task = asyncio.ensure_future(dispatcher.run())
    await asyncio.sleep(0.2)
    print("holding", flush=True)
    await task
    await client.aclose()

asyncio.run(main())
"""


def _holder(home: Path, url: str) -> subprocess.Popen[str]:
    outbox = resolve(home).ensure().outbox
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(outbox), url], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_send_hands_its_leads_to_the_process_that_has_the_queue(tmp_path: Path) -> None:
    """The app (here a headless process with the queue's dispatcher) delivers what `send`
    queues within seconds; `send` waits and reports every row."""
    rows = [f"P{i},0413{i:06d},Town" for i in range(20)]
    path = write_csv(tmp_path / "leads.csv", rows)
    home = tmp_path / "home"
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home), NOOJEE_API_KEY="demo-key")
    with SimThread(capacity=4, min_service=0.0, jitter=0.0) as sim:
        holder = _holder(home, sim.url)
        try:
            started = time.monotonic()
            done = subprocess.run(
                _send_argv(path, sim.url, "--profile", "P"),
                env=env,
                capture_output=True,
                timeout=60,
            )
            took = time.monotonic() - started
        finally:
            holder.terminate()
            sent_by_holder, _ = holder.communicate(timeout=20)
        leads = sim.state()["leads"]
    assert done.returncode == send.EXIT_OK, done.stderr.decode()
    rows_out, summary = json_lines(done.stdout.decode())
    assert [r["status"] for r in rows_out] == ["delivered"] * 20
    assert summary["delivered"] == 20
    assert took < 30
    assert len(leads) == 20
    assert sent_by_holder.count("delivered") == 20  # the holder sent them, not `send`


def test_send_takes_over_when_the_queue_holder_ends(tmp_path: Path) -> None:
    """The holder cannot reach the PBX; once it is gone, `send` sends the leads itself."""
    rows = [f"P{i},0413{i:06d},Town" for i in range(10)]
    path = write_csv(tmp_path / "leads.csv", rows)
    home = tmp_path / "home"
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home), NOOJEE_API_KEY="demo-key")
    with SimThread(capacity=4, min_service=0.0, jitter=0.0) as sim:
        holder = _holder(home, "http://127.0.0.1:9")  # refused: it never delivers
        sender = subprocess.Popen(
            _send_argv(path, sim.url, "--profile", "P", "--retry-scale", "0.05"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            with Outbox(resolve(home).outbox) as box:
                deadline = time.monotonic() + 30
                while box.count() < 10:
                    assert time.monotonic() < deadline, "send never queued its leads"
                    time.sleep(0.1)
            time.sleep(1.0)
            assert sender.poll() is None  # waiting for the holder
        finally:
            holder.kill()
            holder.wait()
        out, err = sender.communicate(timeout=60)
        leads = sim.state()["leads"]
    assert sender.returncode == send.EXIT_OK, err.decode()
    said = err.decode()
    assert said.count("is being sent by the test's window (pid ") == 1
    # The dispatcher's log records go to the log file, not the terminal (said once, above).
    assert "Taking over when it ends" not in said
    assert "Taking over when it ends" in resolve(home).log_file.read_text(encoding="utf-8")
    _rows, summary = json_lines(out.decode())
    assert summary["delivered"] == 10
    assert len(leads) == 10


class _EchoingPbx(http.server.BaseHTTPRequestHandler):
    """Refuses every lead (code 104) quoting the key in plain, URL-encoded and JSON forms."""

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(404, {"code": 404, "message": "no such call"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        key = parse_qs(urlsplit(self.path).query)["apiKey"][0]
        message = (
            f"refused {self.path} for {key} next=%26apiKey%3D{quote(key, safe='')} "
            + json.dumps({"apiKey": key})
        )
        self._answer(200, {"code": 104, "message": message})


def test_a_key_the_server_echoes_never_reaches_sends_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Send+Echo/Key=77"
    monkeypatch.setenv(send.KEY_ENV, secret)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingPbx)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        path = write_csv(tmp_path / "leads.csv", [ROWS[0]])
        for extra in (["--json"], []):
            code, out, err = run([str(path), "--server", url, *TARGET_ARGS, *extra], capsys)
            assert code == send.EXIT_SOME_NOT_DELIVERED, err
            assert "104" in out
            for form in (secret, quote(secret, safe=""), "Send+Echo", "Key=77", "Key%3D77"):
                assert form not in out + err
        with Outbox(resolve().outbox) as box:
            (lead,) = box.leads(LeadQuery())
        assert lead.state is State.REJECTED
        assert "refused" in lead.last_message
        assert "Send+Echo" not in lead.last_message
        assert quote(secret, safe="") not in lead.last_message
    finally:
        server.shutdown()
        server.server_close()


def test_a_duplicate_after_a_lost_answer_is_reported_apart() -> None:
    from noojee_desk.core.delivery.records import Lead, State, Target
    from noojee_desk.send import STATUSES, _lead_result, _summary

    lead = Lead(
        1, 1, 7, "p", Target(3, 42, 101), False, {}, "nd-x", True, State.DUPLICATE, 2, 0.0,
        True, 105, "DUPLICATE", "A lead with this phone number is in the campaign; it may be "
        "this lead's own earlier attempt (whose answer was lost) or another lead.", "", None,
        None, None, 0.0, 0.0,
    )  # fmt: skip
    result = _lead_result(lead)
    assert result.status == "duplicate"
    assert result.code == 105
    assert "earlier attempt" in result.message
    summary = _summary([result], 1.0, None)
    assert "duplicate" in STATUSES
    assert summary["duplicate"] == 1
    assert summary["delivered"] == 0
    assert summary["rejected"] == 0


def _send_process(home: Path, path: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home), NOOJEE_API_KEY="demo-key")
    argv = [sys.executable, "-m", "noojee_desk", "send", str(path), "--server", url]
    return subprocess.run(
        [*argv, *TARGET_ARGS, "--json"], env=env, capture_output=True, text=True, timeout=60
    )


def test_random_bytes_inside_the_queue_file_end_send_with_a_message_not_a_traceback(
    tmp_path: Path, pbx: SimThread
) -> None:
    home = tmp_path / "home"
    path = write_csv(tmp_path / "leads.csv", [f"P{i},0413{i:06d},Town" for i in range(300)])
    first = _send_process(home, path, pbx.url)
    assert first.returncode == send.EXIT_OK, first.stderr
    queue = resolve(home).outbox
    data = bytearray(queue.read_bytes())
    assert len(data) > 8192
    rng = random.Random(4)
    for offset in range(4096, len(data), 1024):  # every page after the first, in places
        data[offset : offset + 200] = bytes(rng.randrange(256) for _ in range(200))
    queue.write_bytes(bytes(data))
    for wal in (queue.with_name(queue.name + "-wal"), queue.with_name(queue.name + "-shm")):
        wal.unlink(missing_ok=True)
    again = _send_process(home, path, pbx.url)
    assert "Traceback" not in again.stderr, again.stderr
    assert again.returncode in (send.EXIT_STORAGE, send.EXIT_CONFIG), again.stderr
    assert "damaged" in again.stderr or "not a Noojee Desk queue" in again.stderr, again.stderr


def test_an_empty_queue_file_is_damaged_not_an_empty_queue(tmp_path: Path, pbx: SimThread) -> None:
    home = tmp_path / "home"
    path = write_csv(tmp_path / "leads.csv", ["Ann Lee,0413000001,Town"])
    queue = resolve(home).outbox
    queue.parent.mkdir(parents=True, exist_ok=True)
    queue.write_bytes(b"")
    os.utime(queue, (time.time() - 3600, time.time() - 3600))  # there since an hour ago
    result = _send_process(home, path, pbx.url)
    assert "Traceback" not in result.stderr
    assert result.returncode == send.EXIT_STORAGE, result.stderr
    assert "is empty" in result.stderr
    assert queue.stat().st_size == 0  # left as it was, for support
    assert pbx.state()["leads"] == []


def test_a_full_disk_at_enqueue_queues_nothing_and_says_so(
    tmp_path: Path,
    pbx: SimThread,
    key: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from noojee_desk.core.desk import Desk

    home = tmp_path / "home"
    monkeypatch.setenv("NOOJEE_DESK_HOME", str(home))
    opened = Desk.open_outbox

    def tiny_disk(self: Desk) -> Outbox:
        box = opened(self)
        pages = box._db.execute("PRAGMA page_count").fetchone()[0]
        box._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # room for almost nothing
        return box

    monkeypatch.setattr(Desk, "open_outbox", tiny_disk)
    rows = [f"Person {i} {'x' * 200},0413{i:06d},Town" for i in range(2000)]
    path = write_csv(tmp_path / "leads.csv", rows)
    code, _out, err = run([str(path), "--server", pbx.url, *TARGET_ARGS], capsys)
    assert code == send.EXIT_STORAGE, err
    assert "full" in err
    assert "Traceback" not in err
    with Outbox(resolve(home).outbox) as box:
        assert box.batches() == []  # nothing half-queued
        assert box.count() == 0
    assert pbx.state()["leads"] == []


def test_a_profile_for_one_pbx_is_never_used_to_send_to_another(
    tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(profiles=[Profile("office", server_url="https://pbx.example.com")])
    SettingsStore(resolve().settings).save(settings)
    path = write_csv(tmp_path / "leads.csv", [ROWS[0]])
    argv = [str(path), "--server", "https://other.example.com", *TARGET_ARGS, "--profile", "office"]
    code, _, err = run(argv, capsys)
    assert code == send.EXIT_CONFIG
    assert "--profile 'office' is the connection to https://pbx.example.com" in err
    assert not resolve().outbox.exists()  # nothing was queued


def test_leads_left_in_sends_own_queue_are_not_said_to_go_with_the_app(
    tmp_path: Path,
    pbx: SimThread,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(send.KEY_ENV, "wrong-key")  # paused: the leads stay queued
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])
    code, out, _ = run([str(path), "--server", pbx.url, *TARGET_ARGS], capsys)
    assert code == send.EXIT_CONFIG
    assert "2 leads are still queued; run the same command again to send them." in out
    assert "Noojee Desk" not in out  # the app never opens the queue of `send <server>`


@pytest.mark.parametrize("in_app", [True, False])
def test_leads_left_in_a_named_queue_go_with_the_app_only_when_it_has_that_connection(
    tmp_path: Path,
    pbx: SimThread,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    in_app: bool,
) -> None:
    """``--profile NAME`` with the key in the environment: the app sends what is left only
    when NAME is one of its connections; a name it does not have is a queue of `send` alone."""
    if in_app:
        settings = Settings(profiles=[Profile("office", server_url=pbx.url)])
        SettingsStore(resolve().settings).save(settings)
    monkeypatch.setenv(send.KEY_ENV, "wrong-key")  # paused: the leads stay queued
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])
    argv = [str(path), "--server", pbx.url, *TARGET_ARGS, "--profile", "office"]
    code, out, _ = run(argv, capsys)
    assert code == send.EXIT_CONFIG
    also = " (or open Noojee Desk on that connection)" if in_app else ""
    assert f"2 leads are still queued; run the same command again{also} to send them." in out
    assert ("Noojee Desk" in out) is in_app
    code, out, _ = run([*argv, "--json"], capsys)
    rows, _summary = json_lines(out)
    by = "Noojee Desk or 'send' run" if in_app else "'send' runs"
    assert f"Still queued: it is sent when {by} again." in [r["message"] for r in rows]


def test_a_batch_numbered_by_an_older_version_reports_each_row_its_own_lead(
    tmp_path: Path,
) -> None:
    """Older versions stored rows from 1 under the header; this one stores file rows (the header
    is row 1). Resuming such a batch, each row is still reported with its own lead."""
    from noojee_desk.core.delivery.outbox import Outbox
    from noojee_desk.core.delivery.records import Attempt, LeadInput, State, Target, Transition
    from noojee_desk.core.leads.validate import LeadCheck
    from noojee_desk.send import Prepared, collect

    target = Target(1, 2, 3)
    people = ["Ann", "Bob", "Cy", "Bob"]  # a repeated row has a lead of its own too
    with Outbox(tmp_path / "queue.sqlite3") as box:
        old = box.queue_once(
            "p",
            target,
            [LeadInput({"name": n}, (), i + 1) for i, n in enumerate(people)],
            allow_duplicates=False,
            source="send leads.csv",
            key="K",
        ).batch
        box.record(
            Attempt(1, 0, 0, "rejected", 208, "bad", 0, 200),
            Transition(State.REJECTED, code=208, message="bad"),
        )
        checks = [LeadCheck(i + 2, {"name": n}) for i, n in enumerate(people)]
        results = collect(Prepared(checks, "K", ["name"]), box, old, profile="p", target=target)
    assert [(r.row, r.status) for r in results] == [
        (2, "rejected"),
        (3, "pending"),
        (4, "pending"),
        (5, "pending"),
    ]
    assert results[0].code == 208
    assert all(r.message != "Valid." for r in results)  # each row found its queued lead


# -- --export --------------------------------------------------------------------------------


def _export_argv(path: Path, url: str, results: Path, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "noojee_desk", "send", str(path), "--server", url]
    return [*argv, *TARGET_ARGS, "--export", str(results), *extra]


def test_export_writes_the_runs_results_and_says_how_far_it_is(tmp_path: Path) -> None:
    """A real process, its stderr not a terminal: a line as the export starts and one as it
    ends, as the sending's progress does; the file holds each queued lead with its result."""
    path = write_csv(tmp_path / "leads.csv", ROWS)
    results = tmp_path / "out" / "results.csv"
    results.parent.mkdir()
    env = dict(os.environ, NOOJEE_DESK_HOME=str(tmp_path / "home"), NOOJEE_API_KEY="demo-key")
    with SimThread(capacity=4, min_service=0.005, jitter=0.0, seed=3) as sim:
        done = subprocess.run(
            _export_argv(path, sim.url, results), env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == send.EXIT_SOME_NOT_DELIVERED, done.stderr
    lines = done.stderr.splitlines()
    assert "Exporting to results.csv: 0 of 3 leads" in lines
    assert "Exporting to results.csv: 3 of 3 leads" in lines
    assert lines[-1] == f"Exported 3 leads to {results}."
    with results.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["Name"], r["Status"], r["Code"]) for r in table] == [
        ("Ann Lee", "delivered", "0"),
        ("Cy Poe", "rejected", "104"),
        ("Ed Fox", "delivered", "0"),
    ]
    assert sorted(p.name for p in results.parent.iterdir()) == ["results.csv"]


def test_export_progress_is_one_updating_line_on_a_terminal(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "leads.csv", [ROWS[0], ROWS[4]])
    results = tmp_path / "results.xlsx"
    env = dict(os.environ, NOOJEE_DESK_HOME=str(tmp_path / "home"), NOOJEE_API_KEY="demo-key")
    master, slave = pty.openpty()
    seen = bytearray()
    with SimThread(capacity=4, min_service=0.005, jitter=0.0, seed=3) as sim:
        proc = subprocess.Popen(
            _export_argv(path, sim.url, results), env=env, stdout=subprocess.PIPE, stderr=slave
        )
        os.close(slave)
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other side is closed: the process ended
                break
            if not chunk:
                break
            seen += chunk
        proc.wait(timeout=60)
        assert proc.stdout is not None
        proc.stdout.close()
    os.close(master)
    text = seen.decode()
    assert proc.returncode == send.EXIT_OK, text
    assert "\rExporting to results.xlsx: 2 of 2 leads\x1b[K" in text
    assert f"\x1b[K\r\nExported 2 leads to {results}." in text  # the line stays, then this
    book = openpyxl.load_workbook(results, read_only=True)
    rows = list(book["Results"].iter_rows(values_only=True))
    book.close()
    assert [row[:2] for row in rows[1:]] == [("Ann Lee", "0412000001"), ("Ed Fox", "0412000005")]


def _full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: whoever writes to it waits until the other end reads."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    for size in (4096, 1):  # a write up to PIPE_BUF goes in whole or not at all
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(write, b"x" * size)
    os.set_blocking(write, True)
    return read, write


def _wchan_names_waits() -> bool:
    """Whether /proc tells where a process waits (some kernels and sandboxes say only "0")."""
    if not Path("/proc/self/wchan").exists():
        return False
    read, write = _full_pipe()
    child = subprocess.Popen([sys.executable, "-c", "import os; os.write(1, b'x')"], stdout=write)
    os.close(write)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if "pipe_write" in Path(f"/proc/{child.pid}/wchan").read_text():
                    return True
            time.sleep(0.02)
        return False
    finally:
        os.close(read)
        child.wait(timeout=10)


def test_ctrl_c_before_the_export_is_written_leaves_the_old_file(tmp_path: Path) -> None:
    """A real process and a real SIGINT while it exports (held, for the test, by a full pipe
    on its standard output as it reports, just before the export): no half file, the one
    there before left as it was, exit 3; the leads themselves were delivered."""
    if not _wchan_names_waits():
        pytest.skip("needs a Linux /proc whose wchan names where a process waits")
    rows = [f"P{i},0413{i:06d},Town" for i in range(20)]
    path = write_csv(tmp_path / "leads.csv", rows)
    results = tmp_path / "results.csv"
    results.write_text("the last run's results\n", encoding="utf-8")
    env = dict(os.environ, NOOJEE_DESK_HOME=str(tmp_path / "home"), NOOJEE_API_KEY="demo-key")
    read, write = _full_pipe()
    errors: list[bytes] = []
    with SimThread(capacity=4, min_service=0.005, jitter=0.0, seed=3) as sim:
        proc = subprocess.Popen(
            _export_argv(path, sim.url, results), env=env, stdout=write, stderr=subprocess.PIPE
        )
        os.close(write)
        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))  # type: ignore[union-attr]
        reader.start()
        wait_until(lambda: len(sim.state()["leads"]) == 20, limit=30, what="all sent")

        def waits_on_stdout() -> bool:
            wchan = Path(f"/proc/{proc.pid}/wchan").read_text()
            return "pipe_write" in wchan

        for _ in range(3):  # held there, not passing through a moment of waiting on stderr
            wait_until(waits_on_stdout, limit=30, what="the report waiting on its pipe")
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        out = bytearray()
        while chunk := os.read(read, 65536):
            out += chunk
        os.close(read)
        proc.wait(timeout=30)
        reader.join(timeout=30)
    err = errors[0].decode()
    assert proc.returncode == send.EXIT_INTERRUPTED, err
    assert "Done: 20 rows" in out.decode()
    assert f"Export cancelled: {results} was not written." in err
    assert results.read_text(encoding="utf-8") == "the last run's results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "leads.csv", "results.csv"]
    with Outbox(resolve(tmp_path / "home").outbox) as box:
        assert box.counts()[State.DELIVERED] == 20


def test_ctrl_c_while_queueing_stops_the_run_even_with_an_export(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl+C before the sending starts stops the run (the leads stay queued) with --export as
    without it: it only cancels the export once the sending is over."""
    path = write_csv(tmp_path / "leads.csv", [f"P{i},0413{i:06d},Town" for i in range(30)])
    queue_once = Outbox.queue_once

    def interrupted(self: Outbox, *args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)  # the person presses Ctrl+C as the file is queued
        return queue_once(self, *args, **kwargs)

    monkeypatch.setattr(Outbox, "queue_once", interrupted)
    with SimThread(capacity=4, min_service=0.005, jitter=0.0, seed=3) as sim:
        argv = [str(path), "--server", sim.url, *TARGET_ARGS, "--export", str(tmp_path / "r.csv")]
        code, _out, err = run(argv, capsys)
        assert sim.state()["leads"] == []
    assert code == send.EXIT_INTERRUPTED, err
    assert "Interrupted; unsent leads stay queued." in err
    assert not (tmp_path / "r.csv").exists()
