"""Adaptive concurrency: find how many calls the PBX can take at once, from latency alone.

The server runs at most C inserts at once and queues the rest. Below C, one more call in flight
adds throughput and leaves latency at its no-load level; above C it only adds queueing: each
call waits about ``service / C`` longer. Between an answer and the next call of its slot the
client also takes a moment (``gap``: the sender measures it and tells ``note_gap``) during which
the slot idles, so the best limit is C plus the share of a slot that gap costs,
``C * (1 + gap / latency)``, no more. The limiter finds it like TCP Vegas (and Netflix's
concurrency-limits ``VegasLimit``) does, from an estimate of the calls waiting in the server's
queue:

- Answers are grouped in windows: ``max(4, 2 * limit)`` calls *sent under the current limit*,
  after the first ``limit`` of them (that first round still feels the previous limit). While
  starting, a window is the first round itself (``max(2, limit)`` calls): the limit before it
  left no queue, so there is none to feel, and each doubling is judged one round trip after it,
  not two. A first round that shows calls waiting shows only part of the queue it makes (it
  waited behind calls sent under the limit before), so the next ``max(2, limit)`` calls sent
  are the window that says how many calls are too many; slow start ends with it, though it
  shows less (a desk starting into a busy server sees other desks' queue come and go). A
  window is judged once all its calls ended, so slow (queued) calls are never left out. Its
  latency is the mean without the slowest tenth.
- ``base`` is the lowest window latency of the last ``base_memory`` seconds: the no-load latency.
- Drains (like BBR's ProbeRTT): every ``drain_every`` seconds, on the wall clock's grid so that
  desks sharing a PBX do it at the same moment, the limiter sends nothing for a bit more than one
  round trip (the server's queue empties), then the calls that would leave no queue (the last
  window's ``target``, below: the server's capacity for a desk alone, about its share for desks
  sharing it), whose first one is timed: a fresh no-load sample; when it answers, the limit is
  restored. Without it a desk that starts while others keep the server busy would
  take their queue for the no-load latency and grab more than its share. The timed call goes
  alone; the rest follow ``measure_spread`` (a quarter) of the no-load latency later, so that
  every desk's timed call reaches the emptied server before any desk's other calls fill it (a
  desk that started into a busy server learns its true no-load latency at its first drain,
  instead of waiting behind another desk's calls and keeping more than its share for longer).
  When the desks' timed calls outnumber the server's slots one of them waits; so a desk whose
  share is under one call (``target < 1``: its calls wait for other desks' calls, so its base
  is known) ends its hold one spread later, and the desks that believe they have room (one of
  which may have taken a queue for its no-load latency) time their calls on an empty server.
- Little's law: each slot spends ``latency + gap`` per call, ``latency - base`` of it queueing,
  so ``queue = limit * (latency - base) / (latency + gap)`` calls wait on the server, and
  ``target = limit - queue`` is the limit that would keep its slots busy with none waiting: the
  capacity plus the share of a slot the gap costs.
  - ``queue > beta`` (1.5): too many; the limit drops to ``target + alpha`` (at least by one).
    A probe (below) must do better to be kept, ``queue <= probe_accept`` (1.2), else the limit
    goes straight back; slow start overshooting goes back to ``target`` rounded up (not below the
    limit it doubled from).
  - ``queue < alpha`` (0.5) while the limit was kept busy, and calls hardly slower than at no
    load (under ``grow_slower``, 10%: a queue other desks make is no room to grow): grow; double
    at first (slow start), then one step. Growing beyond the highest limit that recently held is
    a "probe": a failed probe doubles the windows to wait before the next one (up to
    ``max_probe_gap``), so at the server's limit the queue stays short nearly all of the time.
    Growing back up to a limit that held (after a decrease caused by noise) happens at once.
  - in between: steady.
- Calls that spend over ``shrink_slower`` (a quarter) of their time queueing mean other desks
  are queueing too: shrink (down to one call), so that desks sharing a PBX hold similar limits.
- A 109 (the server gave up on a call after a minute in its queue) halves the limit at once.
- One call early: a whole number of slots cannot hold the gap's share (at capacity 3 the best
  limit is about 3.1). Once a probe above the limit found a queue (the limit is the server's),
  one call more than the limit may go ``gap`` seconds before the oldest call in flight could
  answer (by a low mark of the time calls take): it reaches the server before that slot frees,
  so the slot does not idle while its answer is being recorded, and it waits its share of the
  spread of service times. Its latency counts from when that slot freed: the wait it was sent
  to make is no sign of a crowded server (counted, it read as calls slower than at no load,
  which stopped the early call about every other window). Not while calls wait already (the
  last window's ``queue >= alpha``: a limit one above the capacity covers the gap by itself),
  nor while calls are slower than at no load by ``grow_slower`` or more (other desks share the
  PBX: one call more would be taken from their shares, and at a share of one call it would
  double this desk's), never above the hard cap, during a probe, a drain or slow start. The flag is
  also set by a step of one down for a queue (the limit above was too many); crowding, a bigger
  step down or a 109 clear it.

Several desks sharing a PBX each see the queue the others make: none grows while calls wait, and
the ones holding more calls than the rest give way, so their shares stay even.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ticket:
    """One call in flight: its limit epoch, its place in that epoch, how busy the limiter was."""

    epoch: int
    seq: int  # 0 for the first call sent under this epoch's limit
    in_flight: int  # calls in flight including this one, when it was sent
    at: float = 0.0  # the limiter's clock when it was sent
    early: bool = False  # sent one above the limit, before an answer (it fills no freed slot)


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of one window, kept for diagnostics and benchmarks."""

    at: float
    limit: int
    new_limit: int
    latency: float
    base: float
    queue: float
    reason: str
    gap: float = 0.0


class AdaptiveLimit:
    """A limit that follows the server's: ``acquire`` before a call, ``release`` after it."""

    def __init__(
        self,
        *,
        initial: int = 1,
        min_limit: int = 1,
        max_limit: int = 16,
        alpha: float = 0.5,
        beta: float = 1.5,
        probe_accept: float = 1.2,
        grow_slower: float = 0.1,
        shrink_slower: float = 0.25,
        base_memory: float = 75.0,
        max_probe_gap: int = 16,
        drain_every: float = 15.0,
        measure_spread: float = 0.25,
        max_gap_share: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= min_limit <= max_limit:
            raise ValueError("need 1 <= min_limit <= max_limit")
        if not 0 < alpha <= probe_accept <= beta:
            raise ValueError("need 0 < alpha <= probe_accept <= beta")
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.alpha = alpha
        self.beta = beta
        self.probe_accept = probe_accept
        self.grow_slower = grow_slower
        self.shrink_slower = shrink_slower
        self.base_memory = base_memory
        self.max_probe_gap = max_probe_gap
        self.drain_every = drain_every
        self.measure_spread = measure_spread
        self.max_gap_share = max_gap_share
        self._clock = clock
        self._wall = wall
        self._limit = max(min_limit, min(max_limit, initial))
        self.in_flight = 0
        self._slow_start = True
        self._epoch = 0
        self._sent = 0  # calls sent under this epoch
        self._window = self._window_size()
        self._skip = 0  # calls of the first round at a new limit: not part of its window
        self._done = 0  # calls of the window that ended
        self._samples: list[float] = []
        self._flown = 0.0  # calls in flight times seconds, since the limit was last set
        self._flown_at = self._flown_from = clock()
        self._history: deque[tuple[float, float]] = deque()  # (time, window latency)
        self._probe_from: int | None = None  # the limit to go back to if this one fails
        self._good = 0  # the highest limit that recently held
        self._probe_gap = 1  # windows to wait before probing above ``_good``
        self._quiet = 0  # windows since the last change
        # The drain: "run", then "hold" (send nothing until the server's queue emptied), then
        # "measure" (the calls that leave no queue; the first one sent is timed), then "run"
        # again with the limit restored.
        self._phase = "run"
        self._phase_until = 0.0  # wall-clock end of "hold" (or the give-up time of "measure")
        self._drain_slot = math.floor(wall() / drain_every) if drain_every > 0 else 0
        self._restore = self._limit
        self._last_target = 1.0  # the last window's ``target`` (calls that leave no queue)
        self._last_queue = 0.0  # the last window's ``queue`` (calls waiting on the server)
        self._last_slower = 0.0  # the last window's share of a call's time spent queueing
        self._drain_ticket: tuple[int, int] | None = None  # (epoch, seq) of the no-load sample
        self._rest = 0  # the calls of "measure" that follow the timed one, at ``_rest_at`` (wall)
        self._rest_at = 0.0
        self._last_latency = 0.0
        self._gap: float | None = None  # smoothed seconds from an answer to its slot's next call
        # (epoch, seq) -> when it was sent, or for the early call when a slot freed after that
        self._flying: dict[tuple[int, int], float] = {}
        self._early: tuple[int, int] | None = None  # the early call, until a slot frees for it
        self._call_time: float | None = None  # a low mark of the seconds a call takes
        self._ceiling = False  # a probe above the limit found a queue: the limit is the server's
        self.decisions: deque[Decision] = deque(maxlen=1024)
        self.early_calls = 0  # calls sent one above the limit (diagnostics, benchmarks)

    # -- state -------------------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def base(self) -> float | None:
        """The no-load latency estimate in seconds (None until a window completed)."""
        return min(m for _, m in self._history) if self._history else None

    @property
    def room(self) -> int:
        """Calls the limit itself has room for now (without the early call)."""
        self._tick()
        if self._phase == "hold":
            return 0
        return max(0, self._limit - self.in_flight)

    @property
    def available(self) -> int:
        """Calls that may go now: the limit's room, or the one early call when it is due."""
        room = self.room
        if room > 0:
            return room
        early = self._early_at()
        return 1 if early is not None and early <= self._clock() else 0

    def _early_at(self) -> float | None:
        """When one call above the limit may go (see the module docstring), or None."""
        if (
            not self._ceiling
            or self._phase != "run"
            or self._slow_start
            or self._probe_from is not None  # a probe above the limit runs: it alone
            or self._last_queue >= self.alpha  # calls wait already: the gap is covered
            or self._last_slower >= self.grow_slower  # other desks' calls wait: no room
            or self.in_flight != self._limit
            or self._limit >= self.max_limit
            or not self._gap
            or self._call_time is None
            or not self._flying
        ):
            return None
        return min(self._flying.values()) + self._call_time - self._gap

    @property
    def draining(self) -> bool:
        return self._phase != "run"

    @property
    def gap(self) -> float:
        """The smoothed time in seconds from an answer to the next call of its slot (0 until the
        sender told one)."""
        return self._gap or 0.0

    def note_gap(self, seconds: float) -> None:
        """One measured gap: from an answer to the next call sent in the slot it freed."""
        if seconds < 0 or not math.isfinite(seconds):
            return
        self._gap = seconds if self._gap is None else self._gap + (seconds - self._gap) / 16

    def wake_in(self) -> float | None:
        """Seconds until a call may go that may not go now: the end of a drain's hold, the
        moment the calls after its timed one may go, or the early call's moment (None when
        none is ahead)."""
        if self._phase == "hold":
            return max(0.0, self._phase_until - self._wall())
        if self.available > 0:
            return None
        if self._phase == "measure" and self._rest:
            return max(0.0, self._rest_at - self._wall())
        early = self._early_at()
        return None if early is None else max(0.0, early - self._clock())

    def set_max(self, max_limit: int) -> None:
        """Change the hard cap (at least ``min_limit``)."""
        self.max_limit = max(self.min_limit, max_limit)
        self._good = min(self._good, self.max_limit)
        self._set(min(self._limit, self.max_limit), "hard cap changed")

    # -- calls -------------------------------------------------------------------------------------

    def acquire(self, *, force: bool = False) -> Ticket | None:
        """A ticket for one more call, or None when the limit is reached (``force``: always)."""
        if not force and self.available <= 0:
            return None
        self._account()
        self.in_flight += 1
        early = self.in_flight > self._limit
        ticket = Ticket(self._epoch, self._sent, self.in_flight, self._clock(), early)
        self._flying[(ticket.epoch, ticket.seq)] = ticket.at
        if early:  # its time starts when a slot frees
            self._early = (ticket.epoch, ticket.seq)
            self.early_calls += 1
        self._sent += 1
        if self._phase == "measure" and self._drain_ticket is None:
            self._drain_ticket = (ticket.epoch, ticket.seq)  # the first call after the hold
        return ticket

    def release(self, ticket: Ticket, latency: float | None) -> None:
        """The call ended; ``latency`` when the server processed it (an answer with a code)."""
        started = self._flying.get((ticket.epoch, ticket.seq))
        self._landed(ticket, answered=latency is not None and latency > 0)
        if ticket.early and started is not None and latency is not None and latency > 0:
            # Its wait for the slot it was sent ahead of is ours, not the server's crowding.
            latency = max(1e-6, min(latency, self._clock() - started))
        if self._phase == "measure" and self._drain_ticket == (ticket.epoch, ticket.seq):
            self._end_drain(latency)
        if ticket.epoch != self._epoch:
            return  # sent under another limit
        if not self._skip <= ticket.seq < self._skip + self._window:
            return  # the first round at a new limit (a transition), or beyond this window
        self._done += 1
        if latency is not None and latency > 0:
            self._samples.append(latency)
        if self._done >= self._window:
            if len(self._samples) >= max(2, self._window // 2):
                self._decide()
            else:
                self._set(self._limit, "too few answers")

    def dropped(self, ticket: Ticket) -> None:
        """The call ended without telling anything about the server's load."""
        self.release(ticket, None)

    def overloaded(self, ticket: Ticket) -> None:
        """The server gave up on a call after queueing it (109): halve the limit now."""
        self._landed(ticket, answered=False)
        self._ceiling = False
        if ticket.epoch != self._epoch:
            return  # already reacted to this overload
        self._slow_start = False
        self._probe_from = None
        if self._phase != "run":
            self._phase = "run"
        self._probe_gap = self.max_probe_gap
        self._rest = 0
        new = max(self.min_limit, self._limit // 2)
        self._good = min(self._good, new)
        self._set(new, "server overloaded (109)")

    def _landed(self, ticket: Ticket, *, answered: bool) -> None:
        """Bookkeeping of a call that ended: in flight, and the time calls take."""
        self._account()
        self.in_flight = max(0, self.in_flight - 1)
        key = (ticket.epoch, ticket.seq)
        sent = self._flying.pop(key, None)
        now = self._clock()
        if self._early is not None and self._early != key:
            self._flying[self._early] = now  # the slot it was sent for is free: its time starts
        self._early = None
        if answered and sent is not None:
            took = now - sent
            if took > 0 and math.isfinite(took):
                # A low mark of the time calls take: down at once to a quicker call, up slowly.
                # Timed by it, the early call is sent before most answers (the service time
                # varies), so the server never waits for it; it waits its share of the spread.
                old = self._call_time
                self._call_time = took if old is None or took < old else old + (took - old) / 32

    # -- the algorithm -----------------------------------------------------------------------------

    def _tick(self) -> None:
        """Start, advance or end a drain (see the module docstring) by the wall clock."""
        if self.drain_every <= 0:
            return
        now = self._wall()
        if self._phase == "measure" and now >= self._phase_until:
            self._end_drain(None)  # the first call after the hold never answered
        if self._phase == "run":
            slot = math.floor(now / self.drain_every)
            if slot <= self._drain_slot:
                return
            self._drain_slot = slot
            if not self._history or self._slow_start:
                return  # nothing learnt yet, or still starting: no need to measure again
            # Send nothing until the calls now queued (ours and other desks') are done. A desk
            # whose share is under one call waits one spread more (see the module docstring).
            base = self.base or 0.1
            hold = min(3.0, 1.1 * (self._last_latency or base)) + 0.02
            if self._last_target < 1.0:
                hold += self.measure_spread * base
            self._phase, self._phase_until = "hold", slot * self.drain_every + hold
            self._restore = self._limit
            self._set(self._limit, "drain: hold")
        if self._phase == "hold" and now >= self._phase_until:
            # As many calls as keep the server's slots busy with none waiting (desks sharing it
            # hold about their shares of that); the first one sent is timed.
            self._phase = "measure"
            self._phase_until = now + max(2.0, 20 * (self.base or 0.1))
            self._drain_ticket = None
            calls = max(1, min(self._limit, math.floor(self._last_target)))
            # The timed call alone first: other desks' timed calls reach the server before
            # anyone's other calls (see the module docstring).
            self._rest = calls if calls > 1 else 0
            self._rest_at = now + self.measure_spread * (self.base or 0.1)
            self._set(1, "drain: the timed call, alone")
        if self._phase == "measure" and self._rest and now >= self._rest_at:
            calls, self._rest = self._rest, 0
            self._set(calls, "drain: the calls that leave no queue")

    def _end_drain(self, latency: float | None) -> None:
        """The first call after a hold answered (``latency``: its no-load sample) or gave up."""
        if latency is not None and latency > 0:
            self._history.append((self._clock(), latency))
        self._phase = "run"
        self._drain_ticket = None
        self._rest = 0
        self._set(self._restore, "drain: done")

    def _account(self) -> None:
        now = self._clock()
        self._flown += self.in_flight * max(0.0, now - self._flown_at)
        self._flown_at = now

    def _window_size(self) -> int:
        return max(2, self._limit) if self._slow_start else max(4, 2 * self._limit)

    def _note(self, limit: int, reason: str, latency: float, queue: float) -> None:
        base = self.base or 0.0
        self.decisions.append(
            Decision(self._clock(), self._limit, limit, latency, base, queue, reason, self.gap)
        )

    def _set(self, limit: int, reason: str, latency: float = 0.0, queue: float = 0.0) -> None:
        limit = max(self.min_limit, min(self.max_limit, limit))
        self._note(limit, reason, latency, queue)
        if limit != self._limit:
            self._limit = limit
            self._quiet = 0
        self._epoch += 1
        self._sent = 0
        self._done = 0
        self._window = self._window_size()
        # The first round at a new limit still feels the previous one. In slow start it is
        # judged all the same (the limit before left no queue): the quickest look at the new
        # one, enough to double again. A queue it shows is looked at again (``_decide``).
        self._skip = 0 if self._slow_start else self._limit
        self._samples = []
        self._account()
        self._flown, self._flown_from = 0.0, self._flown_at

    def _decide(self) -> None:
        samples = sorted(self._samples)
        keep = samples[: max(1, math.ceil(len(samples) * 0.9))]  # without the slowest tenth
        latency = sum(keep) / len(keep)
        self._last_latency = latency
        now = self._clock()
        self._history.append((now, latency))
        while len(self._history) > 1 and self._history[0][0] < now - self.base_memory:
            self._history.popleft()
        base = self.base or latency
        slower = 1.0 - base / latency  # the share of each call's time spent queueing
        # Each slot spends ``latency + gap`` per call (the gap bounded: a stalled sender is no
        # reason to pile calls on the server); ``target`` calls would keep the server's slots
        # busy with none waiting: its capacity plus the share of a slot the gap costs.
        gap = min(self.gap, self.max_gap_share * base)
        queue = self._limit * max(0.0, latency - base) / (latency + gap)
        target = self._limit - queue
        self._last_target = target
        self._last_queue = queue
        self._last_slower = slower
        limit = self._limit
        second_look = self._slow_start and self._skip > 0  # in slow start ``_skip`` is 0 but here
        if (
            self._slow_start
            and not second_look
            and (queue >= self.alpha or slower >= self.grow_slower)
        ):
            # Slow start's first round at this limit shows calls waiting, but only part of the
            # queue it makes (the calls it waited behind were sent under the limit before): how
            # many calls are too many is told by the calls sent from now on, in the same epoch.
            self._note(limit, "slow start: a queue, looked at again", latency, queue)
            self._skip, self._done, self._samples = self._sent, 0, []
            return
        # Kept busy: on average all the slots in flight but those between an answer and their
        # next call (``gap``), within half a call; not a sender with fewer calls to make.
        self._account()
        span = self._flown_at - self._flown_from
        busy = span <= 0 or self._flown / span >= limit * latency / (latency + gap) - 0.5
        self._quiet += 1

        # The limit a probe above it started from, while such a probe runs.
        probe_from = self._probe_from
        if probe_from is not None and probe_from >= limit:
            probe_from = None
        # A new, higher limit must show a short queue to be kept (hysteresis against noise).
        too_many = self.beta if probe_from is None or limit <= self._good else self.probe_accept
        # Calls that wait a quarter of their time although this desk sends few of them: other
        # desks are queueing too; give way, down to one call (shares stay fair).
        crowded = slower > self.shrink_slower and limit > self.min_limit
        if queue > too_many or crowded:
            starting, self._slow_start = self._slow_start, False
            if probe_from is not None and starting:
                # Doubled past the server's limit: the window says where it is.
                new = max(probe_from, min(limit - 1, _round(target + self.alpha)))
                self._probe_from = probe_from if new > probe_from else None
                self._ceiling = new < limit
                self._set(new, "slow start found a queue", latency, queue)
                return
            if probe_from is not None:
                new = probe_from
                if limit > self._good:
                    self._probe_gap = min(self.max_probe_gap, self._probe_gap * 2)
                else:
                    self._good = new  # a limit that held before no longer does
                reason = "probe found a queue"
                self._ceiling = True  # one more than ``new`` is too many
            else:
                new = min(limit - 1, _round(target + self.alpha))
                reason = "queue on the server" if queue > too_many else "server crowded"
                # One step down for a queue of our own: the limit below is the server's. Else
                # (crowded by other desks, or further down) learn the server's limit again.
                self._ceiling = not crowded and new == limit - 1
            new = max(self.min_limit, new)
            self._probe_from = None
            self._set(new, reason, latency, queue)
            return

        if busy:
            self._good = max(self._good, limit)
        if self._probe_from is not None:
            self._probe_from = None
            self._probe_gap = 1 if limit >= self._good else self._probe_gap
        if queue >= self.alpha or second_look:
            # A queue seen in slow start ends it, though the second look shows less: calls
            # that waited behind other desks' calls are no room to double into.
            self._slow_start = False
        # Grow only while calls hardly wait: a queue made by other desks is no room to grow.
        room = queue < self.alpha and slower < self.grow_slower

        if not room or not busy or limit >= self.max_limit:
            self._set(limit, "steady", latency, queue)
        elif self._slow_start:
            self._probe_from = limit
            self._set(limit * 2, "slow start", latency, queue)
        elif limit < self._good:
            self._probe_from = limit
            self._set(limit + 1, "recover", latency, queue)
        elif self._quiet >= self._probe_gap:
            self._probe_from = limit
            self._set(limit + 1, "probe", latency, queue)
        else:
            self._set(limit, "steady", latency, queue)


def _round(value: float) -> int:
    """To the nearest whole number, halves up."""
    return math.floor(value + 0.5)
