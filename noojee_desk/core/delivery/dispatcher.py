"""Sends queued leads at the PBX's pace: adaptive concurrency, retry policy, breaker and events.

How it works, in short:

- Leads are claimed from the outbox (marked ``sending``, committed) only when the adaptive limit
  (``limiter.AdaptiveLimit``) has room, so the server never sees a burst. The limit starts at 1
  and finds the server's own limit from latency (see ``limiter``).
- Every slot stays busy: a small group of leads is claimed ahead (marked ``sending`` and
  committed before any of them is called; only leads whose external id we made), and the next
  one is called the moment an answer frees a slot, while that answer is still being committed.
  The writer thread commits answers and claims asked for together in one transaction (one disk
  sync). Paused, stopped, or the breaker open: the leads claimed ahead go back in line, their
  outcome known (never called). A process killed meanwhile leaves them ``sending``, re-queued
  flagged "outcome unknown" by the next run: a 112 then means delivered (no other lead has our
  id) and a 105 ends ``duplicate`` (perhaps its own attempt), never "delivered".
- Controls (cancel, hold, retry, pause) write on the loop's connection when the file is free
  (waiting at most ``control_wait``), else on the writer thread; expiry, recovery and the
  breaker's "due now" always go through the writer, and so do the stop's (leads claimed ahead
  and calls cut off put back in line): another process holding the file never stalls the loop.
  A lead whose call ended but whose answer is not committed yet still counts as in flight: a
  hold or cancel (or a batch stopped) meanwhile is applied once it is recorded.
- Every answer goes through ``POLICY``, one table that says what each kind of answer means for the
  lead and for the queue. The new state is committed before anyone hears of it.
- A queue-wide circuit breaker: after ``RetryTiming.breaker_after`` server failures in a row (or
  one refused connection) the queue stops sending and probes, one probe at a time, until the
  server answers again. While nothing answers the probe is a cheap list call (``Client.probe``)
  at a bounded interval (about every 10 to 13 s after a short ramp), so sending resumes within
  seconds of the PBX's return however long it was down; while the PBX answers with errors (a
  manual import's 103s) the probe is the next lead, spaced by backoff up to 30 s. When the
  breaker closes, the leads that waited out the trouble are due at once.
- A ``blocked`` answer (key rejected, wrong address, TLS) pauses the queue with "needs attention";
  its leads stay queued and none is marked failed.
- Events (``LeadChanged``, ``QueueFigures`` at most ``figures_interval`` apart, ``BatchFinished``)
  go to plain callbacks (``subscribe``) or an async iterator (``events``), so the UI never polls.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from noojee_desk.core.delivery import codes
from noojee_desk.core.delivery.limiter import AdaptiveLimit, Ticket
from noojee_desk.core.delivery.locks import ProfileLock
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.outcome import Kind, Outcome
from noojee_desk.core.delivery.policy import (
    Breaker,
    BreakerMode,
    RetryTiming,
    Step,
    rule_for,
    wait_for,
)
from noojee_desk.core.delivery.records import (
    FINAL_STATES,
    Attempt,
    Lead,
    LeadQuery,
    OutboxBusy,
    State,
    Transition,
    is_locked,
    storage_problem,
)
from noojee_desk.core.delivery.setup import SetupStopped, SetupWatch
from noojee_desk.core.delivery.writer import OutboxWriter
from noojee_desk.core.flag import Flag
from noojee_desk.core.redact import redact_text

log = logging.getLogger(__name__)
T = TypeVar("T")

#: More leads than this changed by one control: one ``LeadsReloaded`` instead of an event each.
BULK_EVENT_THRESHOLD = 200


class Client(Protocol):
    """What the dispatcher needs of ``api.NoojeeClient``."""

    async def insert_lead(
        self,
        template_id: int,
        campaign_id: int,
        allocation_id: int,
        fields: dict[str, str],
        *,
        allow_duplicates: bool = False,
    ) -> Outcome: ...

    async def probe(self) -> Outcome:
        """One cheap call (a list) that tells whether the PBX answers; never raises."""
        ...


# -- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeadChanged:
    lead_id: int
    batch_id: int
    state: State
    attempts: int
    next_attempt_at: float | None
    code: int | None
    message: str
    sentence: str
    fix: str

    @classmethod
    def of(cls, lead: Lead) -> LeadChanged:
        return cls(
            lead.id,
            lead.batch_id,
            lead.state,
            lead.attempts,
            lead.next_attempt_at if lead.state is State.QUEUED else None,
            lead.last_code,
            lead.last_message,
            lead.sentence,
            lead.fix,
        )


@dataclass(frozen=True, slots=True)
class LeadsReloaded:
    """Many leads of these batches changed at once (a bulk control): reload them."""

    batch_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class QueueFigures:
    in_flight: int
    limit: int
    rate_per_s: float
    queued: int
    next_retry_at: float | None
    paused_reason: str | None
    server_state: str  # "ok" | "busy" | "offline" | "blocked"
    counts: dict[str, int]
    fix: str = ""  # what to do, when paused because the queue needs attention
    needs_attention: bool = False
    busy_with: str = ""  # who sends this queue instead, while this process waits to take over


@dataclass(frozen=True, slots=True)
class BatchFinished:
    batch_id: int
    counts: dict[str, int]


Event = LeadChanged | LeadsReloaded | QueueFigures | BatchFinished | SetupStopped


@dataclass(slots=True)
class _Pause:
    reason: str
    fix: str = ""
    blocked: bool = False


@dataclass(slots=True)
class _InFlight:
    lead: Lead
    ticket: Ticket
    task: asyncio.Task[None] | None = None
    probe: bool = False
    freed_at: float | None = None  # when the answer came that freed the slot this call fills
    answered_at: float = 0.0


@dataclass(slots=True)
class _Stats:
    answers: deque[float] = field(default_factory=deque)  # monotonic times of coded answers
    started: float = 0.0
    last_busy: float = float("-inf")


class Dispatcher:
    """Sends one profile's queued leads through ``client`` until ``stop()``.

    Use from the event loop's thread. ``run()`` holds the profile's lock so that only one process
    sends a queue (``OutboxBusy`` otherwise), and first re-queues leads a dead process left
    ``sending`` (flagged: their outcome is unknown).
    """

    def __init__(
        self,
        outbox: Outbox,
        client: Client,
        profile: str,
        *,
        max_concurrency: int = 16,
        retry_budget: float = 86400.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        timing: RetryTiming | None = None,
        limiter: AdaptiveLimit | None = None,
        rng: random.Random | None = None,
        figures_interval: float = 0.25,
    ) -> None:
        self.outbox = outbox
        self.profile = profile
        self.retry_budget = retry_budget
        self.timing = timing or RetryTiming()
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._mono = monotonic
        self._rng = rng or random.Random()
        self.limiter = limiter or AdaptiveLimit(max_limit=max_concurrency, clock=monotonic)
        self.breaker = Breaker(self.timing, self._rng)
        self.figures_interval = figures_interval
        self._subscribers: list[Callable[[Event], None]] = []
        self._in_flight: dict[int, _InFlight] = {}
        #: Leads whose call ended and whose answer is being committed, by id: still "in
        #: flight" for the controls (a hold or cancel asked for meanwhile is applied once the
        #: answer is recorded) and for ``in_flight``.
        self._settling: dict[int, Lead] = {}
        self._cancel_requested: set[int] = set()
        self._hold_requested: set[int] = set()
        self._pause: _Pause | None = None
        self._wake = Flag()
        self._stopping = False
        self._grace = 5.0
        self._running: asyncio.Future[None] | None = None
        self._lock: ProfileLock | None = None
        self._stats = _Stats()
        self._figures_dirty = True
        self._figures_at = float("-inf")
        self._touched_batches: set[int] = set()
        self._finished_batches: set[int] = set()
        self._next_expire = 0.0
        self._released: list[int] = []
        #: Leads claimed ahead of their call (marked ``sending``, committed): the next to go the
        #: moment a slot frees, so no slot waits for a commit. Only leads whose external id we
        #: made: if the process dies, such a lead's retry tells a 112 (it landed: delivered)
        #: from a 105 ("duplicate", perhaps its own attempt) whether or not it was called.
        self._ready: deque[Lead] = deque()
        self._claiming = False
        #: When each answer that left a slot free came (oldest first; moved back by our own
        #: work inside that call), until a call fills the slot: from then to the next call is
        #: the slot's time away from the server (``limiter.note_gap``).
        self._freed: deque[float] = deque()
        #: Control writes waiting on the writer thread because another writer held the file.
        self._later: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # sends, until their answer is recorded
        self._writer: OutboxWriter | None = None
        self.setup = SetupWatch()
        #: Who sends this queue instead while ``run(wait_for_lock=True)`` waits for its lock.
        self.busy_with: str | None = None
        self.lock_retry = 1.5  # seconds between tries to take the lock over
        self.poll_interval = 0.5  # seconds between looks for leads other processes queue
        self.probes = 0  # list calls sent while the PBX did not answer
        #: At most this many leads claimed ahead of their calls (0: claim only when a slot is
        #: free, one commit on the way of each call).
        self.claim_ahead = 4
        #: A control's write waits at most this long for the file on the loop's thread (our own
        #: writer's commits take milliseconds); longer, and it goes to the writer thread.
        self.control_wait = 0.05

    # -- events ----------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns the function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    async def events(self) -> AsyncIterator[Event]:
        """Every event from now on, as an async iterator (ends when the consumer stops)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("an event subscriber failed on %s", type(event).__name__)

    def _emit_leads(self, leads: list[Lead]) -> None:
        if not leads:
            return
        self._figures_dirty = True
        for lead in leads:
            if lead.state in FINAL_STATES:
                self._touched_batches.add(lead.batch_id)
            else:
                self._finished_batches.discard(lead.batch_id)
        if len(leads) > BULK_EVENT_THRESHOLD:
            self._emit(LeadsReloaded(frozenset(lead.batch_id for lead in leads)))
        else:
            for lead in leads:
                self._emit(LeadChanged.of(lead))

    # -- figures ---------------------------------------------------------------------------------

    @property
    def paused_reason(self) -> str | None:
        return None if self._pause is None else self._pause.reason

    @property
    def in_flight(self) -> frozenset[int]:
        """Ids of the leads being sent right now, or whose answer is not recorded yet (empty:
        every answer is committed)."""
        return frozenset(self._flying())

    def _batches_moving(self) -> set[int]:
        """Batches with a lead being called, its answer being committed, or claimed ahead."""
        moving = {flight.lead.batch_id for flight in self._in_flight.values()}
        moving.update(lead.batch_id for lead in self._settling.values())
        moving.update(lead.batch_id for lead in self._ready)
        return moving

    def _flying(self) -> set[int]:
        """Leads a control cannot move now: called, or their answer being committed."""
        return self._in_flight.keys() | self._settling.keys()

    def server_state(self) -> str:
        if self._pause is not None and self._pause.blocked:
            return "blocked"
        if self.breaker.is_open:
            return "offline"
        if self._mono() - self._stats.last_busy < 30.0:
            return "busy"
        return "ok"

    def rate(self) -> float:
        """Answers per second over the last 5 seconds."""
        now = self._mono()
        answers = self._stats.answers
        while answers and answers[0] < now - 5.0:
            answers.popleft()
        span = min(5.0, max(now - self._stats.started, 1e-9))
        return len(answers) / span if answers else 0.0

    def figures(self) -> QueueFigures:
        """The queue's figures now (reads the counts from the outbox)."""
        now = self._clock()
        counts = self.outbox.counts(self.profile)
        next_retry = self.outbox.next_retry_at(self.profile, now)
        if self.breaker.is_open and (next_retry is None or next_retry < self.breaker.probe_at):
            next_retry = self.breaker.probe_at
        pause = self._pause
        return QueueFigures(
            in_flight=len(self._in_flight),
            limit=self.limiter.limit,
            rate_per_s=round(self.rate(), 2),
            queued=counts[State.QUEUED],
            next_retry_at=next_retry,
            paused_reason=None if pause is None else pause.reason,
            server_state=self.server_state(),
            counts=counts.as_dict(),
            fix="" if pause is None else pause.fix,
            needs_attention=pause is not None and pause.blocked,
            busy_with=self.busy_with or "",
        )

    def _emit_figures(self, *, force: bool = False) -> None:
        now = self._mono()
        due = self._figures_dirty and now - self._figures_at >= self.figures_interval
        # A batch with nothing left in flight may have just ended: said at once (and the
        # figures with it), not a figures interval later.
        touched = self._touched_batches
        if not (force or due or (touched and touched - self._batches_moving())):
            return
        self._figures_dirty = False
        self._figures_at = now
        self._emit(self.figures())
        touched, self._touched_batches = self._touched_batches, set()
        for batch_id in sorted(touched):
            counts = self.outbox.counts(batch_id=batch_id)
            if counts.open == 0 and batch_id not in self._finished_batches:
                self._finished_batches.add(batch_id)
                self.setup.forget(batch_id)  # nothing left to hold: other batches go at full pace
                self._emit(BatchFinished(batch_id, counts.as_dict()))

    # -- controls --------------------------------------------------------------------------------

    def pause(self, reason: str = "Paused") -> None:
        """Stop starting new calls (calls in flight finish); leads stay queued."""
        self._pause = _Pause(reason)
        ready = [lead.id for lead in self._ready]
        self._ready.clear()
        if ready:  # claimed ahead, never called: back in line
            self._control_write(lambda box: box.release(ready, unknown_outcome=False))
        self._changed()

    def resume(self) -> None:
        """Start sending again (also after the queue needed attention)."""
        self._pause = None
        self._changed()

    def set_client(self, client: Client) -> None:
        """Use ``client`` from now on (e.g. with the fixed key); a blocked queue resumes."""
        self._client = client
        if self._pause is not None and self._pause.blocked:
            self._pause = None
        self._changed()

    def wake(self) -> None:
        """Look for due leads now (call after an enqueue)."""
        self._changed()

    def cancel(self, lead_ids: Iterable[int]) -> int:
        """Cancel leads: queued, held and failed ones now, ones in flight unless they land."""
        return self._move_leads(set(lead_ids), cancel=True)

    def hold(self, lead_ids: Iterable[int]) -> int:
        """Park queued leads (``held``) until they are retried."""
        return self._move_leads(set(lead_ids), cancel=False)

    def _move_leads(self, ids: set[int], *, cancel: bool) -> int:
        flying = ids & self._flying()
        (self._cancel_requested if cancel else self._hold_requested).update(flying)
        ready = self._take_ready(ids)

        def work(box: Outbox) -> list[Lead]:
            # Claimed ahead but never called: queued again first (their outcome is known).
            if ready:
                box.release(ready, unknown_outcome=False)
            rest = ids - flying
            return box.cancel(rest) if cancel else box.hold(rest)

        def late(changed: list[Lead]) -> None:
            # Leads claimed while the write waited for the file: as if asked while in flight.
            missed = ids - flying - {lead.id for lead in changed}
            again = missed & self._flying()
            (self._cancel_requested if cancel else self._hold_requested).update(again)
            if self._take_ready(missed):
                self._move_leads(missed - again, cancel=cancel)

        changed = self._control_write(work, late)
        if changed is None:  # written later, on the writer thread
            return len(ids - flying) + len(flying)
        return len(changed) + len(flying)

    def _take_ready(self, ids: set[int]) -> list[int]:
        """Ids of ``ids`` claimed ahead, taken out of line (they will not be called)."""
        taken = [lead.id for lead in self._ready if lead.id in ids]
        if taken:
            self._ready = deque(lead for lead in self._ready if lead.id not in ids)
        return taken

    def retry(self, lead_ids: Iterable[int]) -> int:
        """Failed, rejected, cancelled or held leads: queued again now, with a new retry budget."""
        ids = list(lead_ids)
        changed = self._control_write(lambda box: box.requeue(ids))
        return len(ids) if changed is None else len(changed)

    def take_back(self, lead_ids: Iterable[int], then: Callable[[list[Lead]], None]) -> None:
        """Leads whose fields go back to the grid: never sent or retried again (see
        ``Outbox.take_back``). ``then`` gets the leads changed once that is written (now, or
        when the file is free): only those may be queued again as new leads."""
        ids = list(lead_ids)
        self._control_write(lambda box: box.take_back(ids), then)

    def carry_on_from(self, previous: Dispatcher) -> None:
        """Take over what a person set on ``previous`` (a dispatcher that stopped on an error):
        a pause stays a pause, and a batch sent anyway is not stopped again."""
        if previous._pause is not None and not previous._pause.blocked:
            self._pause = previous._pause
        self.setup = previous.setup

    def send_anyway(self, batch_id: int) -> int:
        """A batch stopped for a set-up mistake: its held leads go out after all, and it is
        never stopped again in this run."""
        self.setup.exempt(batch_id)
        held = self.outbox.leads(LeadQuery(batch_id=batch_id, states=frozenset({State.HELD})))
        return self.retry(lead.id for lead in held)

    def _stop_batch(self, batch_id: int) -> None:
        """Hold every unsent lead of ``batch_id`` (those in flight when their answer comes)."""
        queued = self.outbox.leads(LeadQuery(batch_id=batch_id, states=frozenset({State.QUEUED})))
        flying = [f.lead.id for f in self._in_flight.values() if f.lead.batch_id == batch_id]
        flying += [i for i, lead in self._settling.items() if lead.batch_id == batch_id]
        ready = [lead.id for lead in self._ready if lead.batch_id == batch_id]
        held = self.hold([lead.id for lead in queued] + flying + ready)
        stopped = self.setup.explain(batch_id, held)
        log.warning("batch %s stopped: %s", batch_id, stopped.sentence)
        self._emit(stopped)

    def resend_with_duplicates(self, lead_ids: Iterable[int]) -> int:
        """Leads rejected as duplicates (105): queued again with allow-duplicates."""
        ids = list(lead_ids)
        changed = self._control_write(lambda box: box.requeue_duplicates(ids))
        return len(ids) if changed is None else len(changed)

    def _control_write(
        self,
        work: Callable[[Outbox], list[Lead]],
        then: Callable[[list[Lead]], None] | None = None,
    ) -> list[Lead] | None:
        """A control's write, done now on the loop's connection when the file is free (or
        within ``control_wait``). While another writer (another process, a big enqueue, an
        export) holds it longer, the loop does not wait: the write goes to the writer thread,
        which waits its turn, and its events follow when it is done (None is returned)."""
        if self._writer is not None:
            try:
                with self.outbox.short_wait(self.control_wait):
                    changed = work(self.outbox)
            except sqlite3.OperationalError as exc:
                if not is_locked(exc):
                    raise
                task = asyncio.ensure_future(self._control_later(work, then))
                self._later.add(task)
                task.add_done_callback(self._later.discard)
                return None
        else:  # not running: no other write of ours can be waiting
            changed = work(self.outbox)
        if then is not None:
            then(changed)
        self._emit_leads(changed)
        self._changed()
        return changed

    async def _control_later(
        self,
        work: Callable[[Outbox], list[Lead]],
        then: Callable[[list[Lead]], None] | None,
    ) -> None:
        try:
            changed = await self._write(lambda w: w.run(work))
        except sqlite3.Error as exc:
            self._storage_failed(exc)
            return
        except RuntimeError:  # the writer closed meanwhile (stopping): on the loop's connection
            changed = work(self.outbox)
        if then is not None:
            then(changed)
        self._emit_leads(changed)
        self._changed()

    def _changed(self) -> None:
        self._figures_dirty = True
        self._wake.set()

    # -- running ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running is not None and not self._running.done()

    async def run(self, *, wait_for_lock: bool = False) -> None:
        """Send until ``stop()``. Raises ``OutboxBusy`` when another process sends this queue,
        or, with ``wait_for_lock``, says so in its figures (``busy_with``) and tries again every
        ``lock_retry`` seconds until it gets the queue or is stopped."""
        if self.running:
            raise RuntimeError("this dispatcher is already running")
        self._running = asyncio.get_running_loop().create_future()
        try:
            lock = await self._take_lock(wait_for_lock)
        except BaseException:
            self._stopping = False
            self._running.set_result(None)
            raise
        if lock is None:  # stopped while waiting
            self._stopping = False
            self._running.set_result(None)
            return
        self._lock = lock
        # Claims and answers are committed (and synced to disk) on a thread of their own, so a
        # slow disk never stalls the loop the UI shares with this dispatcher.
        self._writer = OutboxWriter(self.outbox.path, clock=self._clock)
        self._stats.started = self._mono()
        try:
            profile = self.profile
            recovered = await self._write(lambda w: w.run(lambda b: b.recover_interrupted(profile)))
            self._emit_leads([lead for lead in map(self.outbox.get, recovered) if lead is not None])
            while not self._stopping:
                self._wake.clear()
                try:
                    await self._expire_if_due()
                    await self._launch()
                    self._emit_figures()
                except sqlite3.Error as exc:
                    self._storage_failed(exc)
                await self._wait(self._next_wake())
        finally:
            try:
                await self._shutdown()
            finally:
                writer, self._writer = self._writer, None
                try:
                    if writer is not None:
                        writer.close()  # waits for the writes already asked for
                finally:  # stop() waits for this, and the lock must not outlive us
                    lock.release()
                    self._lock = None
                    self._stopping = False  # may run again
                    self._running.set_result(None)

    async def _take_lock(self, wait: bool) -> ProfileLock | None:
        """The profile's lock; with ``wait``, once its holder ends (None: stopped meanwhile)."""
        lock = self.outbox.lock_profile(self.profile)
        while not self._stopping:
            try:
                lock.acquire()
            except OutboxBusy as exc:
                if not wait:
                    raise
                if self.busy_with is None:
                    log.warning("%s Taking over when it ends.", exc)
                self.busy_with = exc.holder or "another Noojee Desk process"
                self._figures_dirty = True
                self._emit_figures(force=True)
                self._wake.clear()
                await self._wait(self.lock_retry, poll=False)
                continue
            if self.busy_with is not None:
                log.info("took over sending the queue of %r", self.profile)
                self.busy_with = None
                self._figures_dirty = True
            return lock
        return None

    async def stop(self, grace: float = 5.0) -> None:
        """Stop sending; wait up to ``grace`` s for calls in flight, then re-queue the rest.

        Called before ``run()`` started, ``run()`` returns at once.
        """
        self._grace = grace
        self._stopping = True
        self._wake.set()
        if self._running is not None and not self._running.done():
            await asyncio.shield(self._running)

    async def _wait(self, delay: float | None, *, poll: bool = True) -> None:
        """Until woken or ``delay`` s passed. With ``poll``, every ``poll_interval`` s a look
        whether another process committed (SQLite's ``data_version``, a cheap read of this
        connection's own state) queued leads that are due before ``delay`` is up."""
        if self._wake.is_set():
            return
        waiter = self._wake.future()
        try:
            deadline = None if delay is None else self._mono() + max(0.0, delay)
            seen = self._data_version() if poll else None
            while True:
                left = None if deadline is None else max(0.0, deadline - self._mono())
                if left is None and seen is None:
                    await waiter
                    return
                step = self.poll_interval if left is None else left
                if seen is not None:
                    step = min(step, self.poll_interval)
                sleeper = asyncio.ensure_future(self._sleep(step))  # yields even when 0
                racing: list[asyncio.Future[Any]] = [waiter, sleeper]
                try:
                    await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                if waiter.done() or (deadline is not None and self._mono() >= deadline):
                    return
                if seen is not None:
                    now_seen = self._data_version()
                    if now_seen != seen:
                        seen = now_seen
                        if self._due_from_elsewhere(deadline):
                            return
        finally:
            waiter.cancel()

    def _data_version(self) -> int | None:
        try:
            return int(self.outbox.data_version())
        except sqlite3.Error:
            return None

    def _due_from_elsewhere(self, deadline: float | None) -> bool:
        """After another connection's commit: is a queued lead due before we would wake?"""
        if self._pause is not None or self.breaker.is_open or self.limiter.available <= 0:
            return False
        try:
            due = self.outbox.earliest_due(self.profile)
        except sqlite3.Error:
            return False
        if due is None:
            return False
        wait = due - self._clock()
        return deadline is None or wait < deadline - self._mono()

    def _next_wake(self) -> float | None:
        """Seconds until something is due: a lead, a probe, figures to send, an expiry check."""
        candidates: list[float] = []
        if self._figures_dirty:
            candidates.append(self._figures_at + self.figures_interval - self._mono())
        if self._pause is None:
            now = self._clock()
            if self.breaker.is_open:
                # No probe while one runs (its end wakes us), nor while nothing is queued.
                if not self.breaker.probing and self.outbox.earliest_due(self.profile) is not None:
                    candidates.append(self.breaker.probe_at - now)
                candidates.append(self._next_expire - now)
            elif self.limiter.available > 0:
                due = self.outbox.earliest_due(self.profile)
                if due is not None:
                    candidates.append(due - now)
            else:
                # A drain holds new calls back for a moment, or the early call is ahead.
                held = self.limiter.wake_in()
                if held is not None:
                    candidates.append(held)
        return max(0.0, min(candidates)) if candidates else None

    def _ahead_wanted(self) -> int:
        """How many leads to keep claimed ahead of their calls: a small group, more at higher
        limits (answers come closer together), none while anything but plain sending goes on."""
        if (
            self._pause is not None
            or self._stopping
            or self.breaker.is_open
            or self.setup.suspect
            or self.claim_ahead <= 0
        ):
            return 0
        return min(self.claim_ahead, 1 + self.limiter.limit // 4)

    def _start_ready(self) -> None:
        """Call the leads claimed ahead while the limit has room (at once, on an answer)."""
        if self._pause is not None or self._stopping or self._writer is None:
            return
        if self.breaker.is_open or self.setup.suspect:
            return
        while self._ready and self.limiter.available > 0:
            self._start(self._ready.popleft(), probe=False)

    def _start(self, lead: Lead, *, probe: bool) -> None:
        if probe:
            self.breaker.probing = True
        ticket = self.limiter.acquire(force=True)
        assert ticket is not None
        freed_at = self._freed.popleft() if self._freed and not ticket.early else None
        flight = _InFlight(lead, ticket, probe=probe, freed_at=freed_at)
        self._in_flight[lead.id] = flight
        flight.task = asyncio.ensure_future(self._send(flight))
        self._tasks.add(flight.task)
        flight.task.add_done_callback(self._tasks.discard)

    async def _unready(self) -> None:
        """Leads claimed ahead go back in line (paused, breaker open, stopping): never called,
        so their outcome is known."""
        if not self._ready:
            return
        ids = [lead.id for lead in self._ready]
        self._ready.clear()
        changed = await self._write(
            lambda w: w.run(lambda box: box.release(ids, unknown_outcome=False))
        )
        self._emit_leads(changed)

    async def _launch(self) -> None:
        if self._writer is None:
            return
        if self._pause is not None or self._stopping:
            self._freed.clear()
            await self._unready()
            return
        now = self._clock()
        allowance = self.breaker.allowance(now)
        if allowance is not None or self.setup.suspect:
            self._freed.clear()  # slots idle on purpose: no gap to measure
            await self._unready()
        else:
            self._start_ready()
        free = self.limiter.available if allowance is None else allowance
        if self.setup.suspect:  # a batch may be set up wrong: one call at a time until it is clear
            free = min(free, 1 - len(self._in_flight))
        ahead = 0 if allowance is not None else self._ahead_wanted() - len(self._ready)
        if (free <= 0 and ahead <= 0) or self._claiming:
            return
        if allowance is not None and self.breaker.mode is BreakerMode.DOWN:
            if free > 0 and self.outbox.earliest_due(self.profile) is not None:
                self._start_probe()  # something to send
            return
        # A probe while the PBX answers with errors is the next lead in line, whatever its wait.
        due_by = float("inf") if allowance is not None else None
        profile = self.profile

        async def claim(count: int, due: float | None, generated: bool) -> list[Lead]:
            if count <= 0:
                return []
            return await self._write(
                lambda w: w.claim_due(profile, count, now, due_by=due, generated_ids_only=generated)
            )

        self._claiming = True
        try:  # both in one commit (the writer groups them)
            now_leads, ahead_leads = await asyncio.gather(
                claim(free, due_by, False), claim(ahead, None, True)
            )
        finally:
            self._claiming = False
        probe = allowance is not None
        if not now_leads and not self._ready and not ahead_leads:
            self._freed.clear()  # free slots for want of leads, not a gap
        # Answers that came meanwhile took leads claimed ahead: what does not fit waits in line.
        late: list[Lead] = []
        for lead in now_leads:
            if probe or self.limiter.available > 0:
                self._start(lead, probe=probe)
            else:
                late.append(lead)
        self._ready.extendleft(reversed(late))
        self._ready.extend(ahead_leads)
        self._start_ready()
        self._emit_leads(now_leads + ahead_leads)

    def _start_probe(self) -> None:
        self.breaker.probing = True
        task = asyncio.ensure_future(self._probe())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _probe(self) -> None:
        """Ask the PBX something cheap: when it answers, the breaker closes."""
        try:
            outcome = await self._client.probe()
        except asyncio.CancelledError:
            self.breaker.probe_ended()
            raise
        except Exception as exc:  # the client never raises; count it as no answer
            log.exception("the probe failed unexpectedly")
            outcome = Outcome(Kind.UNKNOWN, message=redact_text(f"{type(exc).__name__}: {exc}"))
        self.probes += 1
        now = self._clock()
        try:
            if outcome.no_answer:
                self.breaker.trouble(now, outcome.retry_reason, probe=True, no_answer=True)
            elif outcome.kind is Kind.RETRY_LATER:  # it answers, with errors: probe with a lead
                self.breaker.trouble(now, outcome.retry_reason, probe=True, no_answer=False)
            else:  # it answers (a refused key or address shows on the next lead)
                log.info("the PBX answers again: sending resumes")
                await self._bring_forward(self._recovered(), now)
        except sqlite3.Error as exc:
            self._storage_failed(exc)
        self._figures_dirty = True
        self._wake.set()

    def _recovered(self) -> float | None:
        """The breaker closes; returns since when leads waited out the trouble (for
        ``_bring_forward``)."""
        since = self.breaker.streak_from
        self.breaker.answered()
        return since

    async def _bring_forward(self, since: float | None, now: float) -> None:
        """Leads that waited out the trouble (tried since ``since``) are due now."""
        if since is None:
            return
        profile = self.profile
        self._emit_leads(
            await self._write(lambda w: w.run(lambda b: b.bring_forward(profile, since, now)))
        )

    async def _send(self, flight: _InFlight) -> None:
        lead = flight.lead
        started = self._clock()
        if flight.freed_at is not None:
            self.limiter.note_gap(self._mono() - flight.freed_at)
        try:
            target = lead.target
            outcome = await self._client.insert_lead(
                target.template_id,
                target.campaign_id,
                target.allocation_id,
                lead.fields_to_send(),
                allow_duplicates=lead.allow_duplicates,
            )
        except asyncio.CancelledError:
            self._in_flight.pop(lead.id, None)
            self.limiter.dropped(flight.ticket)
            if flight.probe:
                self.breaker.probe_ended()
            self._released.append(lead.id)
            raise
        except Exception as exc:  # the client never raises; a bug must not lose the lead
            log.exception("sending lead %s failed unexpectedly", lead.id)
            outcome = Outcome(
                Kind.UNKNOWN,
                message=redact_text(f"{type(exc).__name__}: {exc}"),
                sentence="An unexpected error happened while sending; the lead is kept.",
                fix="It is retried safely with the same lead id; if this persists, contact "
                "support with the log file.",
            )
        flight.answered_at = self._mono()
        self._settling[lead.id] = lead
        self._in_flight.pop(lead.id, None)
        try:
            await self._settle(flight, outcome, started)
        except sqlite3.Error as exc:
            self._storage_failed(exc)
        except Exception:
            log.exception("recording the answer for lead %s failed", lead.id)
        finally:
            self._settling.pop(lead.id, None)
        self._wake.set()

    async def _write(self, write: Callable[[OutboxWriter], Awaitable[T]]) -> T:
        """``write(writer)``; while another writer holds the file (SQLite's "database is locked"
        after ``busy_timeout``), waited out and tried again with backoff: an answer is never
        dropped for it, and the queue is not paused."""
        delay = 0.25
        while True:
            if self._writer is None:
                raise RuntimeError("the dispatcher is not running")
            try:
                return await write(self._writer)
            except sqlite3.OperationalError as exc:
                if not is_locked(exc) or self._stopping:
                    raise
                log.warning("the queue file is locked by another writer; trying again")
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)

    def _storage_failed(self, exc: sqlite3.Error) -> None:
        problem = storage_problem(exc, self.outbox.path)
        if problem.locked:  # another writer: the next round tries again, nothing to say
            log.warning("the queue file is locked by another writer: %s", exc)
            return
        log.error("the queue file cannot be used: %s", exc)
        self._pause = _Pause(problem.sentence, f"{problem.fix} Then resume.", blocked=True)
        self._figures_dirty = True

    async def _settle(self, flight: _InFlight, outcome: Outcome, started: float) -> None:
        lead = flight.lead
        rule = rule_for(outcome)
        now = self._clock()
        # What the answer says about the server.
        if outcome.kind in (Kind.DELIVERED, Kind.REJECTED):
            # The server's part of the call when the client timed it; our own work in the
            # call (writing the request, reading the answer) is part of the slot's gap.
            away = outcome.latency if outcome.on_wire is None else outcome.on_wire
            self.limiter.release(flight.ticket, away)
            self._stats.answers.append(self._mono())
            if self.limiter.room > 0:  # not held back by a drain: a slot to fill now
                self._freed.append(flight.answered_at - max(0.0, outcome.latency - away))
                while len(self._freed) > self.limiter.limit:
                    self._freed.popleft()
        elif rule.shrink_limit:
            self.limiter.overloaded(flight.ticket)
            self._stats.last_busy = self._mono()
        else:
            self.limiter.dropped(flight.ticket)
        recovered_since: float | None = None
        if rule.server_trouble:
            self.breaker.trouble(
                now, outcome.retry_reason, probe=flight.probe, no_answer=outcome.no_answer
            )
            if self.breaker.is_open and self._next_expire <= now:
                self._next_expire = now
        elif rule.step is not Step.BLOCK:
            if self.breaker.is_open:
                recovered_since = self._recovered()
            else:
                self.breaker.answered()
        elif flight.probe:
            self.breaker.probe_ended()
        # What it means for the lead.
        step = rule.step
        code = outcome.code
        message = outcome.message
        sentence, fix = outcome.sentence, outcome.fix
        duplicate = False
        ours = lead.unknown_outcome or lead.external_id_generated
        if step is Step.REJECT and code in codes.DELIVERED_IF_RETRIED and ours:
            # Our generated ids are used by no other lead: a 112 can only mean it landed.
            step = Step.DELIVER
            sentence = (
                "The lead was added to the campaign (an earlier attempt had reached the PBX)."
            )
            fix = ""
        elif step is Step.REJECT and lead.unknown_outcome and code in codes.DUPLICATE_IF_RETRIED:
            duplicate = True
            sentence, fix = codes.DUPLICATE_SENTENCE, codes.DUPLICATE_FIX
        cancel = lead.id in self._cancel_requested
        self._cancel_requested.discard(lead.id)
        hold = lead.id in self._hold_requested
        self._hold_requested.discard(lead.id)
        if step is Step.DELIVER:
            transition = Transition(
                State.DELIVERED,
                code=codes.OK if code is None else code,
                message=message,
                sentence=sentence or codes.CODES[codes.OK].sentence,
            )
        elif step is Step.REJECT:
            transition = Transition(
                State.DUPLICATE if duplicate else State.REJECTED,
                code=code,
                message=message,
                sentence=sentence,
                fix=fix,
            )
        elif step is Step.BLOCK:
            transition = Transition(
                State.CANCELLED if cancel else State.HELD if hold else State.QUEUED,
                next_attempt_at=now,
                code=code,
                message=message,
                sentence=sentence,
                fix=fix,
            )
            self._pause = _Pause(
                outcome.sentence or "The PBX refused the connection settings.",
                outcome.fix,
                blocked=True,
            )
        else:
            unknown = True if rule.maybe_landed else None
            budget_from = lead.budget_from if lead.budget_from is not None else started
            if cancel or hold:
                state = State.CANCELLED if cancel else State.HELD
                transition = Transition(
                    state,
                    unknown_outcome=unknown,
                    code=code,
                    message=message,
                    sentence=sentence,
                    fix=fix,
                )
            elif now - budget_from >= self.retry_budget:
                transition = Transition(
                    State.FAILED,
                    unknown_outcome=unknown,
                    code=code,
                    message=message,
                    sentence=f"{sentence} Gave up after {_span(self.retry_budget)} of retries."
                    if sentence
                    else f"Gave up after {_span(self.retry_budget)} of retries.",
                    fix="Retry it when the PBX is working again; it keeps its lead id, so it "
                    "cannot be added twice.",
                )
            else:
                failures = lead.attempts + 1
                transition = Transition(
                    State.QUEUED,
                    next_attempt_at=now + wait_for(rule, outcome, failures, self.timing, self._rng),
                    unknown_outcome=unknown,
                    code=code,
                    message=message,
                    sentence=sentence,
                    fix=fix,
                )
        attempt = Attempt(
            lead_id=lead.id,
            started_at=started,
            finished_at=now,
            outcome=outcome.kind.value,
            code=code,
            message=message or outcome.sentence,
            latency=outcome.latency,
            http_status=outcome.http_status,
        )
        # Decided before the write: while it is awaited, no more leads of the batch may start.
        # A failure to hold them must not cost this answer its record.
        if self.setup.answer(lead, outcome):
            try:
                self._stop_batch(lead.batch_id)
            except sqlite3.Error:
                log.exception("holding batch %s after its set-up refusals failed", lead.batch_id)
        # The slot is free: the next lead goes now, while this answer is being committed (a
        # crash before that commit leaves this lead "sending": re-queued, outcome unknown).
        # The loop refills the leads claimed ahead once the answer is recorded (one pass of
        # the loop per answer, as the claimed-ahead group covers that commit).
        self._start_ready()
        await self._bring_forward(recovered_since, now)
        give_back: list[int] = []
        if self._pause is not None or self.breaker.is_open or self.setup.suspect:
            give_back = [lead.id for lead in self._ready]  # claimed ahead: back in line
            self._ready.clear()
        if self._writer is not None and give_back:

            def both(box: Outbox) -> tuple[list[Lead], Lead]:
                return box.release(give_back, unknown_outcome=False), box.record(
                    attempt, transition
                )

            released, updated = await self._write(lambda w: w.run(both))
            self._emit_leads(released)
        elif self._writer is not None:
            updated = await self._write(lambda w: w.record(attempt, transition))
        else:  # not running (a settle after stop): commit here
            updated = self.outbox.record(attempt, transition)
        self._emit_leads([updated])
        await self._late_controls(updated)

    async def _late_controls(self, updated: Lead) -> None:
        """A cancel or hold asked for while the answer was being committed: applied now to
        what the answer left (a lead that landed stays delivered, as when asked for during
        the call; the outbox moves only the states each control moves)."""
        cancel = updated.id in self._cancel_requested
        hold = updated.id in self._hold_requested
        self._cancel_requested.discard(updated.id)
        self._hold_requested.discard(updated.id)
        if not (cancel or hold):
            return
        ids = [updated.id]

        def move(box: Outbox) -> list[Lead]:
            return box.cancel(ids) if cancel else box.hold(ids)

        if self._writer is not None:
            changed = await self._write(lambda w: w.run(move))
        else:
            changed = move(self.outbox)
        self._emit_leads(changed)
        self._changed()

    async def _expire_if_due(self) -> None:
        """Leads stuck behind an open breaker longer than the retry budget become ``failed``."""
        if not self.breaker.is_open:
            return
        now = self._clock()
        if now < self._next_expire:
            return
        self._next_expire = now + self.timing.expire_every
        profile, before = self.profile, now - self.retry_budget
        message = f"The PBX could not be reached for {_span(self.retry_budget)}; gave up."
        expired = await self._write(lambda w: w.run(lambda b: b.expire(profile, before, message)))
        self._emit_leads(expired)

    async def _stop_write(self, work: Callable[[Outbox], list[Lead]]) -> list[Lead]:
        """A write of the stop, on the writer thread while it runs (another process holding the
        file stalls that thread, not the loop a window shares). A failure is logged: the leads
        stay ``sending`` and the next run re-queues them, outcome unknown."""
        try:
            if self._writer is not None:
                return await self._writer.run(work)
            return work(self.outbox)
        except sqlite3.Error as exc:
            log.warning("putting leads back in line at the stop failed (next run does): %s", exc)
            return []

    async def _shutdown(self) -> None:
        # Claimed ahead but never called: back in line, their outcome known.
        ready = [lead.id for lead in self._ready]
        self._ready.clear()
        if ready:
            self._emit_leads(
                await self._stop_write(lambda box: box.release(ready, unknown_outcome=False))
            )
        tasks = list(self._tasks)  # calls in flight, and answers still being recorded
        tasks += self._later  # control writes waiting for the file
        if tasks and self._grace > 0:
            await asyncio.wait(tasks, timeout=self._grace)
        for task in tasks:
            if not task.done():
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        released, self._released = self._released, []
        if released:
            # A cancel or hold asked for while the call was out still stands.
            cancel = self._cancel_requested.intersection(released)
            hold = self._hold_requested.intersection(released) - cancel
            self._cancel_requested -= cancel
            self._hold_requested -= hold

            def back_in_line(box: Outbox) -> list[Lead]:
                # The call may have reached the PBX: the next attempt decides (112 delivered,
                # 105 duplicate).
                changed = box.release(released, unknown_outcome=True)
                return changed + box.cancel(cancel) + box.hold(hold)

            self._emit_leads(await self._stop_write(back_in_line))
        self._figures_dirty = True
        self._emit_figures(force=True)


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour" + ("s" if hours != 1 else "")
    if seconds >= 60:
        return f"{round(seconds / 60)} minutes"
    return f"{seconds:g} seconds"
