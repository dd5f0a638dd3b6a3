"""The outbox at 100,000 leads: enqueue in one transaction, and restart to the first send.

Reproduce:  .venv/bin/python benchmarks/bench_outbox.py [--leads 100000] [--runs 3]

Each run uses a fresh SQLite file (WAL, synchronous=FULL) in a temporary folder.
- enqueue: ``Outbox.enqueue`` of 100,000 leads of 8 fields with a phone each (one transaction,
  external ids generated), timed from the call to its durable return.
- restart: with the 100,000 leads queued (and 16 left ``sending`` by a "crash"), a new process
  opens the outbox, starts a dispatcher and waits for its first call to the client: from the
  start of ``Outbox(path)`` to that call (``first_send``), and from launching the process
  (Python start-up and imports included, ``launch_to_first_send``).
- while running, the longest the event loop is blocked by one outbox read the dispatcher makes
  there (counts for the figures, the earliest due lead) with 100,000 queued; its claims and
  answers are written on its writer thread.
Targets: enqueue <= 2 s; restart to first send <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from noojee_desk.core.delivery.dispatcher import Dispatcher  # noqa: E402
from noojee_desk.core.delivery.outbox import Outbox  # noqa: E402
from noojee_desk.core.delivery.outcome import Kind, Outcome  # noqa: E402
from noojee_desk.core.delivery.records import LeadInput, Target  # noqa: E402

PROFILE = "bench"


def make_leads(count: int) -> list[LeadInput]:
    return [
        LeadInput(
            {
                "Name": f"Person {i}",
                "StreetAddress": f"{i % 300} Long Street",
                "City": "Melbourne",
                "State": "VIC",
                "PostCode": f"{3000 + i % 900}",
                "FirstPhone": f"04{i:08d}",
                "SecondPhone": "",
                "Notes": "called back about a quote",
            },
            frozenset({f"+614{i:08d}"}),
            i + 1,
        )
        for i in range(count)
    ]


class FirstCall:
    """A client whose first insert records the time; every call answers delivered."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.first_wall = 0.0
        self.seen = asyncio.Event()

    async def insert_lead(self, *args: object, **kwargs: object) -> Outcome:
        if self.first is None:
            self.first = time.perf_counter()
            self.first_wall = time.time()
            self.seen.set()
        await asyncio.sleep(0.1)
        return Outcome(Kind.DELIVERED, code=0, message="OK", latency=0.1)

    async def probe(self) -> Outcome:
        return Outcome(Kind.DELIVERED, code=0, message="OK")


async def restart(path: str) -> dict[str, float]:
    started = time.perf_counter()
    outbox = Outbox(path)
    opened = time.perf_counter()
    client = FirstCall()
    dispatcher = Dispatcher(outbox, client, PROFILE)
    runner = asyncio.ensure_future(dispatcher.run())
    await client.seen.wait()
    first = (client.first or 0.0) - started
    # Longest single outbox read on the loop while sending with 100,000 queued.
    worst = 0.0
    for call in (
        lambda: outbox.counts(PROFILE),
        lambda: outbox.earliest_due(PROFILE),
        lambda: dispatcher.figures(),
    ):
        for _ in range(5):
            t = time.perf_counter()
            call()
            worst = max(worst, time.perf_counter() - t)
    await dispatcher.stop(grace=0)
    await runner
    outbox.close()
    return {
        "open": opened - started,
        "first_send": first,
        "worst_call": worst,
        "first_send_wall": client.first_wall,
    }


def run_once(count: int, leads: list[LeadInput]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "outbox.sqlite3"
        outbox = Outbox(path)
        started = time.perf_counter()
        outbox.enqueue(PROFILE, Target(3, 42, 101), leads, allow_duplicates=False, source="bench")
        enqueue = time.perf_counter() - started
        outbox.claim_due(PROFILE, 16)  # a "crash" leaves these sending
        size = path.stat().st_size + Path(str(path) + "-wal").stat().st_size
        outbox.close()
        launched = time.time()
        out = subprocess.run(
            [sys.executable, __file__, "--restart", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        result["launch_to_first_send"] = result.pop("first_send_wall") - launched
    result.update(enqueue=enqueue, megabytes=size / 1e6)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--restart", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restart:
        print(json.dumps(asyncio.run(restart(args.restart))))
        return 0
    leads = make_leads(args.leads)
    runs = [run_once(args.leads, leads) for _ in range(args.runs)]
    names = ("enqueue", "open", "first_send", "launch_to_first_send", "worst_call", "megabytes")
    for name in names:
        values = [r[name] for r in runs]
        unit = "MB" if name == "megabytes" else "s"
        print(
            f"{name:>20}: median {statistics.median(values):.3f} {unit} "
            f"(runs: {', '.join(f'{v:.3f}' for v in values)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
