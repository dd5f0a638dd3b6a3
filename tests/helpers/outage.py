"""A PBX outage on simulated time: how soon sending resumes after the PBX's return, and how
often the dispatcher asked while it was away. Used by the dispatcher tests and
``benchmarks/bench_outage.py``."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers.dispatch import FAILING, OFFLINE, OK, TARGET, FakeClient, leads
from helpers.vtime import run
from noojee_desk.core.delivery.dispatcher import Dispatcher
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.outcome import Outcome
from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.delivery.records import State


@dataclass
class OutageRun:
    outage: float  # seconds the PBX was away
    kind: str  # "down": nothing answers; "import": inserts answer 103, lists work
    recovery: float | None = None  # seconds from the return to the first lead inserted
    probes: list[float] = field(default_factory=list)  # times of list calls while away
    lead_calls: list[float] = field(default_factory=list)  # times of inserts while away
    delivered: int = 0
    total: int = 0

    def asked(self, since: float = 0.0) -> int:
        """Calls (list probes and inserts) while away, from ``since`` s into the outage."""
        return sum(1 for t in self.probes + self.lead_calls if t >= since)

    def per_minute(self, since: float = 0.0) -> float:
        span = self.outage - since
        return 60.0 * self.asked(since) / span if span > 0 else 0.0

    def largest_gap(self) -> float:
        """The longest stretch of the outage without a call (ends included)."""
        times = sorted([0.0, *self.probes, *self.lead_calls, self.outage])
        return max(b - a for a, b in itertools.pairwise(times))


class _Pbx(FakeClient):
    """Answers OK, except while away: nothing (``down``) or 103 to inserts (``import``)."""

    def __init__(self, result: OutageRun, start: float, away_at: float) -> None:
        super().__init__(self._insert_answer)
        self.result = result
        self.away_from = start + away_at
        self.away_until = self.away_from + result.outage
        self.delay = 0.05  # the PBX's latency
        self.probe_answer = self._probe_answer

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _away(self) -> bool:
        return self.away_from <= self._now() < self.away_until

    def _insert_answer(self, n: int, fields: dict[str, str], allow: bool) -> Outcome:
        now = self._now()
        if self._away():
            self.result.lead_calls.append(now - self.away_from)
            return OFFLINE if self.result.kind == "down" else FAILING
        if now >= self.away_until and self.result.recovery is None:
            self.result.recovery = now - self.away_until
        return OK

    def _probe_answer(self) -> Outcome:
        if self._away() and self.result.kind == "down":
            self.result.probes.append(self._now() - self.away_from)
            return OFFLINE
        return OK


def simulate(
    folder: Path,
    outage: float,
    *,
    kind: str = "down",
    count: int = 3000,
    away_at: float = 3.0,
    seed: int = 1,
    timing: RetryTiming | None = None,
) -> OutageRun:
    """Send ``count`` leads with the default retry timing; the PBX goes away ``away_at`` s in
    for ``outage`` s. Runs on simulated time: a 30-minute outage takes a few seconds."""
    result = OutageRun(outage, kind, total=count)
    box_path = folder / f"outage-{kind}-{outage:g}-{seed}.sqlite3"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        wall = time.time() + 5.0  # ahead of the outbox's own clock: the queued leads are due
        outbox = Outbox(box_path)
        try:
            client = _Pbx(result, start, away_at)
            dispatcher = Dispatcher(
                outbox,
                client,
                "p",
                clock=lambda: wall + loop.time(),
                monotonic=loop.time,
                timing=timing or RetryTiming(),
                rng=random.Random(seed),
            )
            outbox.enqueue("p", TARGET, leads(count), allow_duplicates=False, source="outage")
            runner = asyncio.ensure_future(dispatcher.run())
            try:
                deadline = client.away_until + 600.0
                while loop.time() < deadline:
                    await asyncio.sleep(0.5)
                    if result.recovery is not None and loop.time() > client.away_until + 5:
                        break
            finally:
                await dispatcher.stop(grace=1.0)
                await runner
            result.delivered = outbox.counts("p")[State.DELIVERED]
        finally:
            outbox.close()

    run(main())
    return result
