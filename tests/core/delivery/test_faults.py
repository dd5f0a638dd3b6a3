"""Fault injection, short versions: failures, drops, an import, an outage, a killed sender, a key
change. Every valid lead must end in the PBX exactly once, and the report must agree with it.

The long versions (1,000 leads) are ``benchmarks/bench_faults.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import waits
from helpers.simproc import SimProcess, make_file

from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.dispatcher import Dispatcher, QueueFigures
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.delivery.records import LeadInput, State, Target

TARGET_ARGS = ["--template", "3", "--campaign", "42", "--allocation", "101"]
FAST_RETRIES = "0.05"  # every retry wait of `send` times this


def send_argv(path: Path, url: str) -> list[str]:
    argv = [sys.executable, "-m", "noojee_desk", "send", str(path), "--server", url]
    return [*argv, *TARGET_ARGS, "--json", "--retry-scale", FAST_RETRIES]


def send_env(home: Path, key: str = "demo-key") -> dict[str, str]:
    return dict(os.environ, NOOJEE_DESK_HOME=str(home), NOOJEE_API_KEY=key)


def check_guarantees(report: str, pbx: dict[str, Any], expected: dict[int, str]) -> None:
    """Exactly once in the PBX, right codes, and the report agrees with the PBX row by row."""
    lines = [json.loads(line) for line in report.splitlines()]
    rows, summary = lines[:-1], lines[-1]["summary"]
    # The report names each row by its row in the file (the header is row 1): data row n is n + 1.
    rows = [{**r, "row": r["row"] - 1} for r in rows]
    assert [r["row"] for r in rows] == sorted(expected)
    leads = [lead for lead in pbx["leads"] if lead["campaign_id"] == 42]
    by_external = Counter(lead["external_id"] for lead in leads)
    by_phone = Counter(lead["fields"]["FirstPhone"] for lead in leads)
    assert max(by_external.values()) == 1, "a lead was inserted twice (same external id)"
    assert max(by_phone.values()) == 1, "a lead was inserted twice (same phone)"
    in_pbx = {lead["external_id"]: lead for lead in leads}
    for row in rows:
        want = expected[row["row"]]
        if want == "delivered":
            assert row["status"] == "delivered", row
            assert row["external_id"] in in_pbx, row
            assert in_pbx[row["external_id"]]["fields"]["Name"] == f"Person {row['row']}"
        elif want == "invalid":
            assert row["status"] == "invalid", row
            assert row["external_id"] is None
        else:
            assert row["status"] == "rejected", row
            assert str(row["code"]) == want, row
            assert row["external_id"] not in in_pbx
    delivered = {r["external_id"] for r in rows if r["status"] == "delivered"}
    assert delivered == set(in_pbx)
    assert summary["pending"] == 0
    assert summary["failed"] == 0


@pytest.mark.slow
def test_failures_drops_an_import_and_an_outage(
    tmp_path: Path, sim_factory: Callable[..., SimProcess]
) -> None:
    sim = sim_factory(
        "--capacity", "4", "--min-service", "0.01", "--jitter", "0.002",
        "--failure-rate", "0.05", "--drop-rate", "0.05", "--seed", "4",
    )  # fmt: skip
    path = tmp_path / "leads.csv"
    expected = make_file(path, 300)
    proc = subprocess.Popen(
        send_argv(path, sim.url),
        env=send_env(tmp_path / "desk"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        waits.wait_until(lambda: sim.lead_count() >= 60, limit=60, what="the first leads")
        sim.post("faults", {"import_seconds": 0.4})  # a manual import on the PBX
        waits.wait_until(lambda: sim.lead_count() >= 150, limit=60, what="leads after the import")
        sim.kill()  # a real outage: the process dies, its state file stays
        time.sleep(0.5)  # the PBX stays down for a while
        sim.start()  # same port, same leads
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err  # some rejected and invalid rows, by design
    state = sim.state()
    assert state["codes"].get("103", 0) > 0  # the failures and the import were seen
    check_guarantees(out, state, expected)


@pytest.mark.slow
def test_the_sender_killed_mid_batch_then_started_again(
    tmp_path: Path, sim_factory: Callable[..., SimProcess]
) -> None:
    sim = sim_factory(
        "--capacity", "2", "--min-service", "0.02", "--jitter", "0.002", "--drop-rate", "0.05",
        "--seed", "9",
    )  # fmt: skip
    path = tmp_path / "leads.csv"
    expected = make_file(path, 150)
    home = tmp_path / "desk"
    first = subprocess.Popen(
        send_argv(path, sim.url),
        env=send_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        waits.wait_until(lambda: sim.lead_count() >= 40, limit=60, what="the first leads")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL
    with Outbox(home / "data" / "outbox.sqlite3") as box:
        left = box.counts()
        # Killed mid-batch: some leads are still to send (those left "sending" died mid-call).
        assert left[State.QUEUED] + left[State.SENDING] > 0
    again = subprocess.run(
        send_argv(path, sim.url), env=send_env(home), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 1, again.stderr
    check_guarantees(again.stdout, sim.state(), expected)


@pytest.mark.asyncio
@pytest.mark.slow
async def test_a_key_changed_mid_run_pauses_then_resumes(
    tmp_path: Path, sim_factory: Callable[..., SimProcess]
) -> None:
    # Slow enough that the key changes while most leads are still queued.
    sim = sim_factory("--capacity", "4", "--min-service", "0.02", "--jitter", "0.0")
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    leads = [
        LeadInput({"Name": f"P{i}", "FirstPhone": f"0416{i:06d}"}, frozenset(), i + 1)
        for i in range(400)
    ]
    batch = outbox.enqueue("p", Target(3, 42, 101), leads, allow_duplicates=False, source="t")
    timing = RetryTiming(backoff_base=0.05, backoff_floor=0.01, probe_base=0.05, probe_cap=0.2)
    figures: list[QueueFigures] = []
    async with NoojeeClient(sim.url, "demo-key") as old, NoojeeClient(sim.url, "new-key") as new:
        dispatcher = Dispatcher(outbox, old, "p", timing=timing, figures_interval=0.02)
        attention = asyncio.Event()

        def on_event(event: object) -> None:
            if isinstance(event, QueueFigures):
                figures.append(event)
                if event.needs_attention:
                    attention.set()

        dispatcher.subscribe(on_event)

        async def until(condition: Callable[[], bool]) -> None:
            """Looked at on each of the dispatcher's events."""
            await waits.until(condition, limit=60, every=None, subscribe=dispatcher.subscribe)

        runner = asyncio.ensure_future(dispatcher.run())
        try:
            await until(lambda: outbox.counts("p")[State.DELIVERED] >= 50)
            await asyncio.to_thread(sim.post, "key", {"api_key": "new-key"})
            await asyncio.wait_for(attention.wait(), 30)
            await until(lambda: not dispatcher.in_flight)
            paused = outbox.counts("p")
            assert paused[State.FAILED] == 0
            assert paused[State.REJECTED] == 0
            assert paused[State.QUEUED] > 0
            assert figures[-1].server_state == "blocked"
            assert "key" in (figures[-1].paused_reason or "").lower()
            dispatcher.set_client(new)
            await until(lambda: outbox.counts(batch_id=batch.id).open == 0)
        finally:
            await dispatcher.stop()
            await runner
    state = await asyncio.to_thread(sim.state)
    assert outbox.counts("p")[State.DELIVERED] == 400
    assert len(state["leads"]) == 400
    assert len({lead["external_id"] for lead in state["leads"]}) == 400
    outbox.close()
