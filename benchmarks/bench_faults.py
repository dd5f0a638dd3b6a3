"""The long fault runs: 1,000 leads through failures, drops, an import, an outage, a killed
sender and a changed key; every valid lead must end in the PBX exactly once.

Reproduce:  .venv/bin/python benchmarks/bench_faults.py [--leads 1000] [--scenario all]

Everything is real: ``noojee-desk sim`` (the standalone emulator, with a state file) and
``noojee-desk send --json`` are separate processes, killed with SIGKILL where the scenario says.
The emulator runs at capacity 4 with a 10 ms service time so a run takes seconds, not minutes;
``send`` gets ``--retry-scale 0.05`` (every retry wait 20 times shorter). Checked after each
scenario: no external id and no phone number twice in the PBX; every valid row delivered, every
DNC row rejected with 104 and every row with unknown contact hours with 111, invalid rows never
sent; and the report of ``send`` agrees with the PBX row by row.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import waits  # noqa: E402  (the tests' waits, found through the line above)
from helpers.simproc import make_file  # noqa: E402

TARGET_ARGS = ["--template", "3", "--campaign", "42", "--allocation", "101"]


class Sim:
    """The standalone emulator; killed and started again on the same port with its state."""

    def __init__(self, state: Path, *args: str) -> None:
        self.state_file, self.args, self.port = state, list(args), 0
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        argv = [sys.executable, "-m", "noojee_desk", "sim", "--port", str(self.port)]
        argv += ["--state", str(self.state_file), *self.args]
        deadline = time.monotonic() + 20
        while True:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith("listening on "):
                break
            self.proc.wait()
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start again")
            time.sleep(0.1)
        self.port = int(line.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/__sim/state", timeout=30).json()

    def count(self) -> int:
        try:
            return int(
                httpx.get(f"{self.url}/__sim/state?leads=0", timeout=30).json()["lead_count"]
            )
        except httpx.HTTPError:
            return -1

    def post(self, route: str, payload: dict[str, Any]) -> None:
        httpx.post(f"{self.url}/__sim/{route}", json=payload, timeout=30).raise_for_status()


def wait_until(condition: Callable[[], bool]) -> None:
    """Block until ``condition()`` holds: the tests' wait, five minutes, every 50 ms."""
    waits.wait_until(condition, limit=300.0, what="the run to get there", every=0.05)


def send(path: Path, url: str, home: Path, key: str = "demo-key") -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "noojee_desk", "send", str(path), "--server", url]
    argv += [*TARGET_ARGS, "--json", "--retry-scale", "0.05"]
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home), NOOJEE_API_KEY=key)
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )


def verify(report: str, pbx: dict[str, Any], expected: dict[int, str]) -> list[str]:
    """The problems found (an empty list: every guarantee held)."""
    problems: list[str] = []
    lines = [json.loads(line) for line in report.splitlines() if line.strip()]
    rows, summary = lines[:-1], lines[-1]["summary"]
    # The report names each row by its row in the file (the header is row 1): data row n is n + 1.
    rows = [{**r, "row": r["row"] - 1} for r in rows]
    leads = [lead for lead in pbx["leads"] if lead["campaign_id"] == 42]
    twice = [k for k, n in Counter(x["external_id"] for x in leads).items() if n > 1]
    if twice:
        problems.append(f"external ids inserted twice: {twice[:5]}")
    phones = [k for k, n in Counter(x["fields"]["FirstPhone"] for x in leads).items() if n > 1]
    if phones:
        problems.append(f"phone numbers inserted twice: {phones[:5]}")
    in_pbx = {x["external_id"] for x in leads}
    if [r["row"] for r in rows] != sorted(expected):
        problems.append("the report does not have one line per row")
    for row in rows:
        want = expected.get(row["row"])
        got = row["status"] if row["status"] != "rejected" else str(row["code"])
        if got != want:
            problems.append(f"row {row['row']}: {got}, expected {want}")
        if (row["status"] == "delivered") != (row["external_id"] in in_pbx):
            problems.append(f"row {row['row']}: the report and the PBX disagree")
    delivered = {r["external_id"] for r in rows if r["status"] == "delivered"}
    if delivered != in_pbx:
        problems.append(f"{len(in_pbx - delivered)} leads in the PBX are not reported delivered")
    if summary["pending"] or summary["failed"]:
        problems.append(f"not finished: {summary}")
    return problems


def faults_and_outage(folder: Path, count: int) -> dict[str, Any]:
    sim = Sim(folder / "pbx.json", "--capacity", "4", "--min-service", "0.01",
              "--jitter", "0.002", "--failure-rate", "0.05", "--drop-rate", "0.05")  # fmt: skip
    path = folder / "leads.csv"
    expected = make_file(path, count)
    started = time.monotonic()
    proc = send(path, sim.url, folder / "desk")
    try:
        wait_until(lambda: sim.count() >= count // 5)
        sim.post("faults", {"import_seconds": 2.0})
        wait_until(lambda: sim.count() >= count // 2)
        sim.kill()
        time.sleep(3.0)  # the PBX is down for three seconds
        sim.start()
        out, _err = proc.communicate(timeout=600)
        state = sim.state()
    finally:
        if proc.poll() is None:
            proc.kill()
        sim.stop()
    return {
        "scenario": "5% failures, 5% drops, a 2 s import, the PBX killed for 3 s",
        "seconds": round(time.monotonic() - started, 1),
        "exit": proc.returncode,
        "pbx codes": state["codes"],
        "drops": state["drops"],
        "problems": verify(out, state, expected),
    }


def killed_sender(folder: Path, count: int) -> dict[str, Any]:
    sim = Sim(folder / "pbx.json", "--capacity", "4", "--min-service", "0.01",
              "--jitter", "0.002", "--drop-rate", "0.05")  # fmt: skip
    path = folder / "leads.csv"
    expected = make_file(path, count)
    started = time.monotonic()
    kills = 0
    try:
        for fraction in (0.25, 0.5, 0.75):  # killed three times, started again each time
            proc = send(path, sim.url, folder / "desk")
            wait_until(lambda f=fraction: sim.count() >= count * f)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        proc = send(path, sim.url, folder / "desk")
        out, _ = proc.communicate(timeout=600)
        state = sim.state()
    finally:
        sim.stop()
    return {
        "scenario": f"the sender killed with SIGKILL {kills} times, 5% drops",
        "seconds": round(time.monotonic() - started, 1),
        "exit": proc.returncode,
        "pbx codes": state["codes"],
        "drops": state["drops"],
        "problems": verify(out, state, expected),
    }


def changed_key(folder: Path, count: int) -> dict[str, Any]:
    sim = Sim(folder / "pbx.json", "--capacity", "4", "--min-service", "0.01")
    path = folder / "leads.csv"
    expected = make_file(path, count)
    started = time.monotonic()
    try:
        proc = send(path, sim.url, folder / "desk")
        wait_until(lambda: sim.count() >= count // 3)
        sim.post("key", {"api_key": "new-key"})
        first_out, first_err = proc.communicate(timeout=600)
        first_code = proc.returncode
        first = [json.loads(x) for x in first_out.splitlines()]
        paused = first[-1]["summary"]
        proc = send(path, sim.url, folder / "desk", key="new-key")
        out, _ = proc.communicate(timeout=600)
        state = sim.state()
    finally:
        sim.stop()
    problems = verify(out, state, expected)
    if first_code != 2 or paused["failed"] or not paused["pending"]:
        problems.append(f"the first run should pause with leads pending: {paused} {first_err}")
    return {
        "scenario": "the key changed mid-run, then the fixed key",
        "seconds": round(time.monotonic() - started, 1),
        "exit": f"{first_code} then {proc.returncode}",
        "pbx codes": state["codes"],
        "drops": state["drops"],
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--scenario", choices=["all", "faults", "killed", "key"], default="all")
    args = parser.parse_args()
    scenarios = {"faults": faults_and_outage, "killed": killed_sender, "key": changed_key}
    chosen = list(scenarios) if args.scenario == "all" else [args.scenario]
    failed = False
    for name in chosen:
        with tempfile.TemporaryDirectory() as folder:
            result = scenarios[name](Path(folder), args.leads)
        failed |= bool(result["problems"])
        print(json.dumps(result))
    print("every guarantee held" if not failed else "SOME GUARANTEES FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
