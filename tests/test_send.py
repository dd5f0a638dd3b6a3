"""``noojee-desk send``: reading files, mapping, dry runs, reports, exit codes, resume, Ctrl+C."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from noojee_desk import send
from noojee_desk.core.delivery.outbox import LeadQuery, Outbox, State
from noojee_desk.core.paths import resolve
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
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5]
    assert "phone" in rows[1]["message"]
    assert "108" in rows[3]["message"]
    assert summary["invalid"] == 2
    assert summary["pending"] == 3
    assert not resolve().outbox.exists()


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
        (1, "delivered", 0),
        (2, "invalid", None),
        (3, "rejected", 104),
        (4, "invalid", None),
        (5, "delivered", 0),
    ]
    assert rows[2]["message"].startswith("The phone number is on the Do Not Call list.")
    assert summary == {
        "rows": 5,
        "delivered": 2,
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
        deadline = time.monotonic() + 20
        while len(sim.state(include_leads=False)["queue_waits"]) < 3:
            assert time.monotonic() < deadline, "the sending never started"
            time.sleep(0.02)
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


def test_a_duplicate_after_a_lost_answer_is_reported_apart() -> None:
    from noojee_desk.core.delivery.outbox import Lead, State, Target
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
