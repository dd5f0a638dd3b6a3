"""Five desks sharing one PBX: aggregate throughput and how fairly they share it.

Reproduce:  .venv/bin/python benchmarks/bench_shared_server.py [--desks 5] [--leads 500]
            [--capacity 4] [--stagger 1.0] [--processes]

The emulator runs in its own process (100 ms minimum service time, jitter up to 20 ms). Each desk
is a dispatcher with its own outbox, started ``--stagger`` seconds after the previous one (all in
one process by default; ``--processes``: each desk in its own process). Over the time all desks
are sending, each desk's rate is measured; reported: the aggregate as a ratio of the server's
ideal (capacity / mean service time) and Jain's fairness index over the desks' rates.
Targets: aggregate >= 0.95 of ideal, Jain's index >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noojee_desk.core.delivery.api import NoojeeClient  # noqa: E402
from noojee_desk.core.delivery.dispatcher import BatchFinished, Dispatcher, LeadChanged  # noqa: E402
from noojee_desk.core.delivery.outbox import Outbox  # noqa: E402
from noojee_desk.core.delivery.records import LeadInput, State, Target  # noqa: E402
from noojee_desk.sim.data import DEMO_API_KEY  # noqa: E402

MIN_SERVICE = 0.1
JITTER = 0.02


async def desk(url: str, number: int, count: int, delay: float) -> dict[str, Any]:
    """One desk: queue ``count`` leads, send them, return the wall times of its answers."""
    await asyncio.sleep(delay)
    answers: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        outbox = Outbox(Path(folder) / "outbox.sqlite3")
        leads = [
            LeadInput({"Name": f"Desk {number} #{i}", "FirstPhone": f"04{number + 1}{i:07d}"})
            for i in range(count)
        ]
        batch = outbox.enqueue(
            "desk", Target(3, 42, 101), leads, allow_duplicates=False, source="b"
        )
        async with NoojeeClient(url, DEMO_API_KEY) as client:
            dispatcher = Dispatcher(outbox, client, "desk")
            finished = asyncio.Event()

            def on_event(event: object) -> None:
                if isinstance(event, LeadChanged) and event.state is State.DELIVERED:
                    answers.append(time.time())
                elif isinstance(event, BatchFinished) and event.batch_id == batch.id:
                    finished.set()

            dispatcher.subscribe(on_event)
            runner = asyncio.ensure_future(dispatcher.run())
            await finished.wait()
            await dispatcher.stop()
            await runner
        outbox.close()
    decisions = [
        (round(d.at, 2), d.limit, d.new_limit, d.reason, round(d.latency, 3), round(d.base, 3))
        for d in dispatcher.limiter.decisions
        if d.reason != "steady"
    ]
    return {"desk": number, "answers": answers, "final_limit": dispatcher.limiter.limit,
            "decisions": decisions}  # fmt: skip


def one_desk_process(args: argparse.Namespace) -> int:
    result = asyncio.run(desk(args.url, args.desk, args.leads, 0.0))
    print(json.dumps(result))
    return 0


async def all_in_one(url: str, desks: int, count: int, stagger: float) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(desk(url, n, count, n * stagger) for n in range(desks))))


def in_processes(url: str, desks: int, count: int, stagger: float) -> list[dict[str, Any]]:
    procs = []
    for number in range(desks):
        argv = [sys.executable, __file__, "--run-desk", "--url", url, "--desk", str(number)]
        argv += ["--leads", str(count)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        time.sleep(stagger)
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--desks", type=int, default=5)
    parser.add_argument("--leads", type=int, default=500, help="per desk")
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--stagger", type=float, default=1.0)
    parser.add_argument("--processes", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print each desk's limit changes")
    parser.add_argument("--run-desk", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--desk", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_desk:
        return one_desk_process(args)

    argv = [sys.executable, "-m", "noojee_desk", "sim", "--port", "0", "--seed", "1"]
    argv += ["--capacity", str(args.capacity), "--min-service", str(MIN_SERVICE)]
    argv += ["--jitter", str(JITTER)]
    sim = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert sim.stdout is not None
    url = sim.stdout.readline().split()[-1]
    try:
        if args.processes:
            results = in_processes(url, args.desks, args.leads, args.stagger)
        else:
            results = asyncio.run(all_in_one(url, args.desks, args.leads, args.stagger))
        state = httpx.get(f"{url}/__sim/state?leads=0", timeout=30).json()
    finally:
        sim.terminate()
        sim.wait(10)

    start = max(min(r["answers"]) for r in results)
    end = min(max(r["answers"]) for r in results)
    span = end - start
    rates = [sum(start <= t <= end for t in r["answers"]) / span for r in results]
    aggregate = sum(rates)
    ideal = args.capacity / (MIN_SERVICE + JITTER / 2)
    jain = aggregate**2 / (len(rates) * sum(r * r for r in rates))
    waits = sorted(state["queue_waits"])
    how = "processes" if args.processes else "one process"
    print(f"desks {args.desks}, capacity {args.capacity}, {args.leads} leads each, {how}")
    print(f"desks started {args.stagger} s apart")
    print(f"all desks sending for {span:.1f} s")
    for r, rate in zip(results, rates, strict=True):
        print(f"  desk {r['desk']}: {rate:.2f} leads/s, final limit {r['final_limit']}")
        if args.verbose:
            for decision in r["decisions"]:
                print("     ", decision)
    print(f"aggregate {aggregate:.2f} leads/s = {aggregate / ideal:.3f} of ideal ({ideal:.1f}/s)")
    print(f"Jain's fairness index {jain:.3f}")
    p50, p90 = waits[len(waits) // 2], waits[int(len(waits) * 0.9)]
    print(f"109s: {state['codes'].get('109', 0)}; server queue wait p50 {p50 * 1000:.0f} ms, "
          f"p90 {p90 * 1000:.0f} ms")  # fmt: skip
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
