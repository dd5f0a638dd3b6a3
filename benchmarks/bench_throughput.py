"""Throughput of the dispatcher against the emulator, side by side with a script told the capacity.

Reproduce:  .venv/bin/python benchmarks/bench_throughput.py [--leads 3000] [--capacities 1,3,4,8]
            [--runs 3] [--naive] [--json FILE]

The emulator runs in its own process (``noojee-desk sim``: 100 ms minimum service time, jitter
up to 20 ms, the server's FIFO queue). For each capacity the senders run one after the other
against the same emulator (reset in between; the order alternates from run to run): a plain
script told the capacity (that many calls at once, each worker sending its next lead as soon as
its last one answered, a 109 retried), and ours (outbox + dispatcher, which is not told the
capacity). ``--naive`` adds the senders that know nothing: one lead at a time, and 32 at once.
Reported for each: leads per second as a ratio of the server's ideal (capacity / mean service
time; also against the 100 ms minimum), the 109s, the server-side queue wait p50/p90, and the
sender's CPU time (this process, all threads; the emulator's is not in it); with ``--runs N``,
the median of each over the runs.
Targets (ours, every capacity): a ratio >= the told sender's, zero 109s, p50 wait <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noojee_desk.core.delivery.api import NoojeeClient  # noqa: E402
from noojee_desk.core.delivery.dispatcher import BatchFinished, Dispatcher  # noqa: E402
from noojee_desk.core.delivery.outbox import Outbox  # noqa: E402
from noojee_desk.core.delivery.outcome import Kind  # noqa: E402
from noojee_desk.core.delivery.records import LeadInput, Target  # noqa: E402
from noojee_desk.sim.data import DEMO_API_KEY  # noqa: E402

MIN_SERVICE = 0.1
JITTER = 0.02
TARGET = Target(3, 42, 101)


class Sim:
    """``noojee-desk sim`` in its own process."""

    def __init__(self, capacity: int, *extra: str) -> None:
        argv = [sys.executable, "-m", "noojee_desk", "sim", "--port", "0"]
        argv += ["--capacity", str(capacity), "--min-service", str(MIN_SERVICE)]
        argv += ["--jitter", str(JITTER), "--seed", "1", *extra]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split()[-1]

    def reset(self) -> None:
        httpx.post(f"{self.url}/__sim/reset", timeout=30).raise_for_status()

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/__sim/state?leads=0", timeout=30).json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def lead_fields(i: int, prefix: str) -> dict[str, str]:
    return {"Name": f"Bench {i}", "FirstPhone": f"{prefix}{i:06d}"}


async def naive(url: str, count: int, at_once: int, *, retry: bool = False) -> float:
    """``at_once`` workers, each sending the next lead as soon as its last one answered; with
    ``retry`` a lead the server did not take (a 109, any retry-later answer) goes again."""
    async with NoojeeClient(url, DEMO_API_KEY, max_connections=64) as client:
        queue = list(range(count))
        started = time.perf_counter()

        async def worker() -> None:
            while queue:
                i = queue.pop()
                while True:
                    outcome = await client.insert_lead(3, 42, 101, lead_fields(i, "0417"))
                    if not retry or outcome.kind in (Kind.DELIVERED, Kind.REJECTED):
                        break

        await asyncio.gather(*(worker() for _ in range(at_once)))
        return time.perf_counter() - started


async def ours(url: str, count: int) -> tuple[float, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        outbox = Outbox(Path(folder) / "outbox.sqlite3")
        leads = [LeadInput(lead_fields(i, "0413"), frozenset(), i + 1) for i in range(count)]
        batch = outbox.enqueue("bench", TARGET, leads, allow_duplicates=False, source="bench")
        async with NoojeeClient(url, DEMO_API_KEY) as client:
            dispatcher = Dispatcher(outbox, client, "bench")
            finished = asyncio.Event()
            dispatcher.subscribe(
                lambda e: isinstance(e, BatchFinished) and e.batch_id == batch.id and finished.set()
            )
            started = time.perf_counter()
            runner = asyncio.ensure_future(dispatcher.run())
            await finished.wait()
            elapsed = time.perf_counter() - started
            await dispatcher.stop()
            await runner
        counts = outbox.counts("bench").as_dict()
        outbox.close()
    decisions = list(dispatcher.limiter.decisions)
    at_limit: Counter[int] = Counter()
    for one, following in itertools.pairwise(decisions):
        at_limit[one.new_limit] += following.at - one.at
    total = sum(at_limit.values()) or 1.0
    limits = {k: round(v / total, 3) for k, v in sorted(at_limit.items())}
    return elapsed, {
        "counts": counts,
        "time_at_limit": limits,
        "final_limit": dispatcher.limiter.limit,
        "early_calls": dispatcher.limiter.early_calls,
        "reasons": dict(Counter(d.reason for d in decisions).most_common(8)),
        "gap_ms": round(dispatcher.limiter.gap * 1000, 2),
        # Every window's decision, for the JSON file only (not printed): seconds from the first,
        # limit, new limit, reason, latency and base in ms, calls queued.
        "decisions": [
            (
                round(d.at - decisions[0].at, 2),
                d.limit,
                d.new_limit,
                d.reason,
                round(d.latency * 1000, 1),
                round(d.base * 1000, 1),
                round(d.queue, 2),
            )
            for d in decisions
        ],
    }


def measure(sim: Sim, name: str, count: int, elapsed: float, capacity: int) -> dict[str, Any]:
    state = sim.state()
    waits = state["queue_waits"]
    rate = count / elapsed
    return {
        "sender": name,
        "capacity": capacity,
        "leads": count,
        "seconds": round(elapsed, 2),
        "rate": round(rate, 2),
        "ratio": round(rate / (capacity / (MIN_SERVICE + JITTER / 2)), 3),
        "ratio_to_min_service": round(rate / (capacity / MIN_SERVICE), 3),
        "code_109": int(state["codes"].get("109", 0)),
        "inserted": state["lead_count"],
        "wait_p50_ms": round(percentile(waits, 0.5) * 1000, 1),
        "wait_p90_ms": round(percentile(waits, 0.9) * 1000, 1),
        "max_running": state["max_running"],
    }


TOLD = "script told the capacity"
OURS = "Noojee Desk"


async def run_capacity(
    capacity: int, leads: int, *, naive_too: bool, flip: bool
) -> list[dict[str, Any]]:
    sim = Sim(capacity)
    rows = []
    try:
        senders: list[tuple[str, int | None]] = [(TOLD, capacity), (OURS, None)]
        if flip:
            senders.reverse()
        if naive_too:
            senders += [("one at a time", 1), ("32 at once", 32)]
        for name, at_once in senders:
            sim.reset()
            extra: dict[str, Any] = {}
            cpu = time.process_time()  # this process, all its threads (the emulator has its own)
            if at_once is None:
                elapsed, extra = await ours(sim.url, leads)
            else:
                elapsed = await naive(sim.url, leads, at_once, retry=name == TOLD)
            cpu = time.process_time() - cpu
            row = measure(sim, name, leads, elapsed, capacity)
            row["cpu_s"] = round(cpu, 2)
            row.update(extra)
            rows.append(row)
            print({k: v for k, v in row.items() if k != "decisions"}, flush=True)
    finally:
        sim.close()
    return rows


MEDIAN_OF = (
    "rate",
    "ratio",
    "ratio_to_min_service",
    "code_109",
    "wait_p50_ms",
    "wait_p90_ms",
    "cpu_s",
)


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per capacity and sender: the median of each figure over the runs."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["capacity"], r["sender"]), []).append(r)
    out = []
    for (capacity, sender), group in groups.items():
        row: dict[str, Any] = {"capacity": capacity, "sender": sender, "leads": group[0]["leads"]}
        row["runs"] = len(group)
        for key in MEDIAN_OF:
            row[key] = statistics.median(r[key] for r in group)
        row["ratios"] = [r["ratio"] for r in group]
        out.append(row)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| Capacity | Sender | Leads | Runs | Leads/s | Ratio of ideal | (of 100 ms ideal) "
        "| 109s | Wait p50 | Wait p90 | Sender CPU | Each run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        each = ", ".join(f"{x:.3f}" for x in r["ratios"])
        lines.append(
            f"| {r['capacity']} | {r['sender']} | {r['leads']} | {r['runs']} | {r['rate']:.1f} | "
            f"**{r['ratio']:.3f}** | {r['ratio_to_min_service']:.3f} | {r['code_109']:g} | "
            f"{r['wait_p50_ms']:.1f} ms | {r['wait_p90_ms']:.0f} ms | {r['cpu_s']:.1f} s | {each} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=3000)
    parser.add_argument("--capacities", default="1,3,4,8")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--naive", action="store_true", help="also one at a time and 32 at once")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    command = " ".join([".venv/bin/python", "benchmarks/bench_throughput.py", *sys.argv[1:]])
    loads = [os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")]
    rows: list[dict[str, Any]] = []
    for run in range(args.runs):
        for capacity in (int(c) for c in args.capacities.split(",")):
            rows += asyncio.run(
                run_capacity(capacity, args.leads, naive_too=args.naive, flip=run % 2 == 1)
            )
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    print()
    print(table(medians(rows)))
    print(f"\nload average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    print(f"reproduce: {command}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
