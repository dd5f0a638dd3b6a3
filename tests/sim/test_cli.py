"""``noojee-desk sim`` as a real process, and the state file that keeps its leads."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from noojee_desk.sim.emulator import API_PREFIX, Emulator
from noojee_desk.sim.server import main
from noojee_desk.sim.store import StateFile, StateFileError, StateFileInUse

INSERT = API_PREFIX + "insertLeadFast"
IDS = {"fTemplateId": 3, "fCampaignId": 42, "fAllocationId": 101}


class Sim:
    """A ``python -m noojee_desk sim`` child process."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "noojee_desk", "sim", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            first = lines.get(timeout=30)
        except queue.Empty:
            self.proc.kill()
            pytest.fail("the emulator printed nothing within 30 s")
        if not first.startswith("listening on "):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            pytest.fail(f"unexpected first line {first!r}; stderr: {err}")
        self.url = first.removeprefix("listening on ").strip()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def finish(self) -> tuple[int, str]:
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            pytest.fail("the emulator did not stop")
        return self.proc.returncode, err


def _insert(
    client: httpx.Client, phone: str, key: str = "demo-key", **extra: str
) -> httpx.Response:
    lead = {"Name": "Jane Smith", "FirstPhone": phone, **extra}
    return client.post(INSERT, params={**IDS, "apiKey": key}, json=lead)


def test_a_killed_emulator_restarts_with_its_leads(tmp_path: Path) -> None:
    state_file = tmp_path / "pbx.json"
    sim = Sim("--state", str(state_file), "--min-service", "0.01", "--jitter", "0")
    assert sim.url.startswith("http://127.0.0.1:")
    with sim.client() as client:
        assert _insert(client, "0491570156", njExternalLeadId="k-1").json()["code"] == 0
        assert _insert(client, "0491570157").json()["code"] == 0
        assert _insert(client, "0491570158").json()["code"] == 0
    sim.proc.kill()  # no chance to save at exit
    sim.finish()

    again = Sim("--state", str(state_file), "--min-service", "0.01", "--jitter", "0")
    with again.client() as client:
        state = client.get("/__sim/state").json()
        assert state["lead_count"] == 3
        assert [x["fields"]["FirstPhone"] for x in state["leads"]] == [
            "0491570156",
            "0491570157",
            "0491570158",
        ]
        assert _insert(client, "0491570159", njExternalLeadId="k-1").json()["code"] == 112
        assert _insert(client, "+61 491 570 157").json()["code"] == 105
        assert _insert(client, "0491570110").json()["code"] == 0
    if sys.platform == "win32":
        again.proc.kill()
        again.finish()
        return
    again.proc.send_signal(signal.SIGTERM)
    code, err = again.finish()
    assert code == 0, err
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    assert len(saved["leads"]) == 4
    assert not StateFile(state_file).journal_path.exists()


def _refused(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``noojee-desk sim ARGS`` that must refuse to start; checks it says so in one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "noojee_desk", "sim", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0, proc.stdout
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("noojee-desk sim: ")
    return proc


def _files(*paths: Path) -> dict[str, bytes | None]:
    return {p.name: p.read_bytes() if p.exists() else None for p in paths}


def test_a_second_emulator_on_the_same_state_file_harms_nothing(tmp_path: Path) -> None:
    state_file = tmp_path / "pbx.json"
    store = StateFile(state_file)
    fast = ("--min-service", "0.01", "--jitter", "0")
    first = Sim("--state", str(state_file), *fast)
    try:
        with first.client() as client:
            assert _insert(client, "0491570156").json()["code"] == 0
            assert _insert(client, "0491570157").json()["code"] == 0
        before = _files(state_file, store.journal_path)
        assert before["pbx.json.journal"] is not None
        assert before["pbx.json.journal"].count(b"\n") == 2

        # the same file on a free port: the port is bound, then the lock refuses
        proc = _refused("--port", "0", "--state", str(state_file), *fast)
        assert "in use by another emulator" in proc.stderr
        assert f"process {first.proc.pid}" in proc.stderr or sys.platform == "win32"
        assert _files(state_file, store.journal_path) == before

        # the same file on the first one's (busy) port: refused before the file is looked at
        port = str(urlsplit(first.url).port)
        proc = _refused("--port", port, "--state", str(state_file), *fast)
        assert "cannot listen" in proc.stderr
        assert _files(state_file, store.journal_path) == before
        other = tmp_path / "other.json"
        _refused("--port", port, "--state", str(other))
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "pbx.json",
            "pbx.json.journal",
            "pbx.json.lock",
        ]

        # the first one still writes to the journal it has open
        with first.client() as client:
            assert _insert(client, "0491570158").json()["code"] == 0
    finally:
        first.proc.kill()  # SIGKILL: only the journal keeps the leads
        first.finish()

    again = Sim("--state", str(state_file), *fast)  # the OS let go of the dead one's lock
    try:
        with again.client() as client:
            state = client.get("/__sim/state").json()
            assert [x["fields"]["FirstPhone"] for x in state["leads"]] == [
                "0491570156",
                "0491570157",
                "0491570158",
            ]
            assert _insert(client, "0491570157").json()["code"] == 105
    finally:
        again.proc.kill()
        again.finish()


def test_the_state_file_lock_holds_through_compaction(tmp_path: Path) -> None:
    first, second = StateFile(tmp_path / "s.json"), StateFile(tmp_path / "s.json")
    first.lock()
    try:
        with pytest.raises(
            StateFileInUse, match=f"in use by another emulator \\(process {os.getpid()}\\)"
        ):
            second.lock()
        first.record_insert(_lead(1))
        first.compact(first.load())  # replaces s.json; the lock is on s.json.lock
        with pytest.raises(StateFileInUse):
            second.lock()
        assert not first.journal_path.exists()
    finally:
        first.unlock()
    second.lock()
    try:
        assert [x["id"] for x in second.load()] == [1]
        with pytest.raises(StateFileInUse):
            first.lock()
    finally:
        second.unlock()


def test_no_field_calls_acts_as_an_older_pbx() -> None:
    sim = Sim("--no-field-calls")
    try:
        with sim.client() as client:
            params = {"fTemplateId": 3, "apiKey": "demo-key"}
            for method in ("getFieldDefn", "getFieldList"):
                response = client.get(API_PREFIX + method, params=params)
                assert response.status_code == 404
                assert response.headers["content-type"].startswith("text/html")
            assert client.get("/__sim/state").json()["faults"]["field_calls"] is False
            assert _insert(client, "0491570156").json()["code"] == 0
    finally:
        sim.proc.kill()
        sim.finish()
    sim = Sim()
    try:
        with sim.client() as client:
            response = client.get(API_PREFIX + "getFieldDefn", params=params)
            assert response.status_code == 200
            assert response.json()[0] == {
                "type": "unicode",
                "key": "Name",
                "required": True,
                "label": "Name",
                "help_text": "Name",
            }
    finally:
        sim.proc.kill()
        sim.finish()


def test_options_are_applied(tmp_path: Path) -> None:
    sim = Sim("--capacity", "2", "--failure-rate", "1", "--key", "secret-2", "--min-service", "0")
    try:
        with sim.client() as client:
            assert _insert(client, "0491570156").status_code == 403
            response = _insert(client, "0491570156", key="secret-2")
            assert (response.status_code, response.json()["code"]) == (500, 103)
            faults = client.get("/__sim/state").json()["faults"]
            assert faults["capacity"] == 2
            assert faults["failure_rate"] == 1.0
            assert faults["queue_timeout"] == 60.0
    finally:
        sim.proc.kill()
        sim.finish()


def test_a_damaged_state_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    state_file = tmp_path / "pbx.json"
    state_file.write_text("{not json", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "noojee_desk", "sim", "--port", "0", "--state", str(state_file)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "cannot read the state file" in proc.stderr
    assert proc.stdout == ""
    assert state_file.read_text(encoding="utf-8") == "{not json"


@pytest.mark.parametrize(
    "args",
    [["--capacity", "0"], ["--failure-rate", "1.5"], ["--port", "70000"], ["--queue-timeout", "0"]],
)
def test_bad_options_are_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    assert "noojee-desk sim" in capsys.readouterr().err


def test_an_empty_key_or_an_endless_service_time_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--key", " "]) == 2
    assert "--key" in capsys.readouterr().err
    assert main(["--min-service", "inf"]) == 2
    assert "min_service" in capsys.readouterr().err


# -- the state file ---------------------------------------------------------------------------


def _lead(lead_id: int, phone: str = "0491570156") -> dict:
    return {
        "id": lead_id,
        "template_id": 3,
        "campaign_id": 42,
        "allocation_id": 101,
        "external_id": None,
        "fields": {"Name": "x", "FirstPhone": phone},
        "inserted_at": "2025-01-01T00:00:00.000+00:00",
    }


def test_journal_replay_and_compaction(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "s.json")
    assert store.load() == []
    store.record_insert(_lead(1))
    store.record_insert(_lead(2))
    store.record_reset()
    store.record_insert(_lead(3))
    store.close()
    assert [x["id"] for x in store.load()] == [3]
    store.compact(store.load())
    assert not store.journal_path.exists()
    store.record_insert(_lead(4))
    store.close()
    assert [x["id"] for x in StateFile(tmp_path / "s.json").load()] == [3, 4]


def test_a_cut_off_last_journal_line_is_ignored(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "s.json")
    store.record_insert(_lead(1))
    store.close()
    with store.journal_path.open("a", encoding="utf-8") as journal:
        journal.write('{"op": "insert", "lead": {"id": 2, "templ')
    assert [x["id"] for x in store.load()] == [1]


def test_a_damaged_journal_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "s.json")
    store.journal_path.write_text(
        json.dumps({"op": "insert", "lead": _lead(1)})
        + "\ngarbage\n"
        + json.dumps({"op": "insert", "lead": _lead(2)})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(StateFileError, match="line 2"):
        store.load()


def test_restore_skips_leads_it_has_and_rebuilds_the_duplicate_checks() -> None:
    emulator = Emulator()
    assert emulator.restore([_lead(5), _lead(5), _lead(9, "0491570157")]) == 2
    assert emulator.restore([_lead(9)]) == 0
    assert [x["id"] for x in emulator.leads()] == [5, 9]
    with pytest.raises(ValueError, match="fields"):
        emulator.restore([{**_lead(10), "fields": ["no"]}])
    assert len(emulator.leads()) == 2


@pytest.mark.asyncio
async def test_restored_leads_count_for_duplicates_and_ids_continue() -> None:
    emulator = Emulator(min_service=0.0, jitter=0.0)
    emulator.restore([_lead(7, "0491570156")])
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://pbx") as client:
        params = {**IDS, "apiKey": "demo-key"}
        lead = {"Name": "x", "FirstPhone": "0491570156"}
        assert (await client.post(INSERT, params=params, json=lead)).json()["code"] == 105
        lead["FirstPhone"] = "0491570157"
        assert (await client.post(INSERT, params=params, json=lead)).json()["code"] == 0
    assert [x["id"] for x in emulator.leads()] == [7, 8]
