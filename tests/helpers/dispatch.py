"""Dispatcher tests' parts: canned answers, a fake client, a harness that waits on events."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from helpers import waits
from noojee_desk.core.delivery import codes
from noojee_desk.core.delivery.api import NoojeeClient
from noojee_desk.core.delivery.dispatcher import BatchFinished, Dispatcher, Event
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.outcome import BlockReason, Kind, Outcome, RetryReason
from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.delivery.records import LeadInput, Target

TARGET = Target(3, 42, 101)
FAST = RetryTiming(
    soon=(0.01, 0.02),
    backoff_base=0.02,
    backoff_cap=0.1,
    backoff_floor=0.005,
    unknown_base=0.01,
    breaker_after=3,
    probe_base=0.05,
    probe_cap=0.1,
    down_probe_first=0.01,
    down_probe_every=(0.03, 0.05),
    expire_every=0.05,
)

OK = Outcome(Kind.DELIVERED, code=0, message="OK", latency=0.01)
BUSY = Outcome(Kind.RETRY_LATER, code=109, retry_reason=RetryReason.BUSY, latency=0.01)
FAILING = Outcome(Kind.RETRY_LATER, code=103, retry_reason=RetryReason.SERVER_ERROR)
OFFLINE = Outcome(Kind.RETRY_LATER, retry_reason=RetryReason.OFFLINE, message="refused")
UNKNOWN = Outcome(Kind.UNKNOWN, message="connection lost")
KEY = Outcome(
    Kind.BLOCKED,
    block_reason=BlockReason.KEY_REJECTED,
    http_status=403,
    sentence="The PBX refused the API key.",
    fix="Check the key.",
)


def rejected(code: int) -> Outcome:
    entry = codes.CODES[code]
    return Outcome(
        Kind.REJECTED, code=code, message=entry.name, sentence=entry.sentence, fix=entry.fix
    )


class FakeClient:
    """Answers with ``answer(call_number, fields, allow_duplicates)``; counts concurrency."""

    def __init__(self, answer: Callable[[int, dict[str, str], bool], Outcome] | None = None):
        self.answer = answer or (lambda n, f, a: OK)
        self.calls: list[tuple[dict[str, str], bool]] = []
        self.running = 0
        self.max_running = 0
        self.gate: asyncio.Event | None = None  # when set, calls wait for it
        self.delay = 0.002
        #: What a probe (a list call) answers; by default: no answer when the next insert would
        #: get none, else the list.
        self.probe_answer: Callable[[], Outcome] | None = None
        self.probes: list[Outcome] = []

    async def probe(self) -> Outcome:
        await asyncio.sleep(self.delay)
        if self.probe_answer is not None:
            outcome = self.probe_answer()
        else:
            try:
                would = self.answer(len(self.calls) + 1, {"Name": "", "FirstPhone": ""}, False)
            except Exception:
                would = OK
            outcome = would if would.no_answer else OK
        self.probes.append(outcome)
        return outcome

    async def insert_lead(
        self,
        template_id: int,
        campaign_id: int,
        allocation_id: int,
        fields: dict[str, str],
        *,
        allow_duplicates: bool = False,
    ) -> Outcome:
        assert (template_id, campaign_id, allocation_id) == (3, 42, 101)
        self.calls.append((fields, allow_duplicates))
        number = len(self.calls)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay)
            return self.answer(number, fields, allow_duplicates)
        finally:
            self.running -= 1


def leads(n: int, start: int = 0) -> list[LeadInput]:
    return [
        LeadInput({"Name": f"P{i}", "FirstPhone": f"04{i:08d}"}, frozenset({f"+614{i:08d}"}), i + 1)
        for i in range(start, start + n)
    ]


class Harness:
    def __init__(self, outbox: Outbox, client: FakeClient | NoojeeClient, **kwargs: object):
        kwargs.setdefault("timing", FAST)
        kwargs.setdefault("rng", random.Random(5))
        kwargs.setdefault("figures_interval", 0.02)
        self.outbox = outbox
        self.client = client
        self.dispatcher = Dispatcher(outbox, client, "p", **kwargs)  # type: ignore[arg-type]
        self.events: list[Event] = []
        self.dispatcher.subscribe(self.events.append)
        self.task: asyncio.Task[None] | None = None

    def enqueue(self, items: list[LeadInput], **kwargs: object) -> int:
        kwargs.setdefault("allow_duplicates", False)
        batch = self.outbox.enqueue("p", TARGET, items, source="test", **kwargs)  # type: ignore[arg-type]
        self.dispatcher.wake()
        return batch.id

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.dispatcher.run())

    async def until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Wait (on the dispatcher's events, not sleeps) until ``condition()`` holds."""
        await waits.until(condition, limit=within, every=None, subscribe=self.dispatcher.subscribe)

    def states(self) -> dict[str, int]:
        return {k: v for k, v in self.outbox.counts("p").as_dict().items() if v}

    def finished(self, batch_id: int) -> bool:
        return self.finished_again(batch_id, 1)

    def finished_again(self, batch_id: int, times: int) -> bool:
        """Whether BatchFinished came ``times`` times for the batch (it can reopen)."""
        seen = [e for e in self.events if isinstance(e, BatchFinished) and e.batch_id == batch_id]
        return len(seen) >= times

    async def stop(self) -> None:
        await self.dispatcher.stop(grace=1.0)
        if self.task is not None:
            await self.task
