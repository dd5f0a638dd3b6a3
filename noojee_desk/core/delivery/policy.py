"""The retry policy: what each answer means for the lead and the queue, how long a retry waits,
and the circuit breaker that stops a queue hammering a failing PBX."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from noojee_desk.core.delivery.outcome import Kind, Outcome, RetryReason


class Step(Enum):
    DELIVER = "deliver"  # the lead is in the campaign
    REJECT = "reject"  # final: the data or the number must change
    RETRY = "retry"  # queued again, due after a wait
    BLOCK = "block"  # the whole queue pauses until a person acts; the lead stays queued


class Wait(Enum):
    NONE = "none"
    SOON = "soon"  # a second or two (the server's own hint when it gives one)
    BACKOFF = "backoff"  # exponential with full jitter, a few seconds up to about 5 minutes
    UNKNOWN = "unknown"  # like BACKOFF but starting shorter: the retry settles the question


@dataclass(frozen=True, slots=True)
class Rule:
    step: Step
    wait: Wait = Wait.NONE
    shrink_limit: bool = False  # the server's queue overflowed: send fewer at once
    server_trouble: bool = False  # counts toward opening the circuit breaker
    maybe_landed: bool = False  # the lead may be in: a later 112 means delivered, 105 duplicate
    why: str = ""


#: What each answer means. Keyed by (outcome kind, retry reason); (kind, None) is the default.
POLICY: dict[tuple[Kind, RetryReason | None], Rule] = {
    (Kind.DELIVERED, None): Rule(Step.DELIVER, why="code 0: inserted"),
    (Kind.REJECTED, None): Rule(
        Step.REJECT, why="a final code (102, 104, 105, 108, 111, 112...): the data must change"
    ),
    (Kind.RETRY_LATER, RetryReason.BUSY): Rule(
        Step.RETRY, Wait.SOON, shrink_limit=True, why="109: waited a minute in the server's queue"
    ),
    (Kind.RETRY_LATER, RetryReason.SERVER_ERROR): Rule(
        Step.RETRY, Wait.BACKOFF, server_trouble=True, why="103 / 5xx: failing, or an import runs"
    ),
    (Kind.RETRY_LATER, RetryReason.OFFLINE): Rule(
        Step.RETRY, Wait.BACKOFF, server_trouble=True, why="connection refused: the PBX is down"
    ),
    (Kind.RETRY_LATER, RetryReason.MAINTENANCE): Rule(
        Step.RETRY, Wait.BACKOFF, server_trouble=True, why="502/503/504: down for maintenance"
    ),
    (Kind.RETRY_LATER, None): Rule(
        Step.RETRY, Wait.BACKOFF, server_trouble=True, why="retry later, no reason given"
    ),
    (Kind.UNKNOWN, None): Rule(
        Step.RETRY,
        Wait.UNKNOWN,
        server_trouble=True,
        maybe_landed=True,
        why="no answer: retried with the same external id",
    ),
    (Kind.BLOCKED, None): Rule(
        Step.BLOCK, why="key rejected, wrong address, TLS: a person must fix the settings"
    ),
}


def rule_for(outcome: Outcome) -> Rule:
    return POLICY.get((outcome.kind, outcome.retry_reason)) or POLICY[(outcome.kind, None)]


_WAIT_WORDS = {
    Wait.NONE: "",
    Wait.SOON: "1 to 3 s, or the server's Retry-After",
    Wait.BACKOFF: "exponential backoff with full jitter (4 s doubling up to 5 min)",
    Wait.UNKNOWN: "backoff from 1 s, same external id",
}


def policy_table() -> str:
    """``POLICY`` as the Markdown table the architecture notes show (a test keeps them equal)."""
    lines = [
        "| Answer | Kind | Reason | Lead | Wait | Queue |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (kind, reason), rule in POLICY.items():
        queue = []
        if rule.shrink_limit:
            queue.append("the limit halves")
        if rule.server_trouble:
            queue.append("counts toward the breaker")
        if rule.step is Step.BLOCK:
            queue.append("paused: needs attention")
        if rule.maybe_landed:
            queue.append("a later 112 means delivered, a later 105 'duplicate'")
        cells = (
            rule.why,
            kind.value,
            reason.value if reason else "",
            rule.step.value,
            _WAIT_WORDS[rule.wait],
            "; ".join(queue),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class RetryTiming:
    """The waits of the retry policy, in seconds (tests shorten them)."""

    soon: tuple[float, float] = (1.0, 3.0)  # after 109, unless the answer suggests a wait
    backoff_base: float = 4.0  # full jitter over base * 2**(n-1), n = the lead's failures
    backoff_cap: float = 300.0
    backoff_floor: float = 1.0
    unknown_base: float = 1.0
    breaker_after: int = 5  # server failures in a row that open the breaker
    # The PBX answers with errors (103s of a manual import): one lead at a time as the probe,
    # spaced from probe_base doubling to probe_cap, so the end of an import is noticed within
    # probe_cap while the leads themselves back off for minutes as Noojee advises.
    probe_base: float = 2.0
    probe_cap: float = 30.0
    # The PBX does not answer at all (refused, unreachable, reset): a cheap list call as the
    # probe, first after down_probe_first doubling, then every down_probe_every (a range, for
    # jitter): sending resumes within its upper end of the PBX's return, however long the outage.
    down_probe_first: float = 1.0
    down_probe_every: tuple[float, float] = (10.0, 13.0)
    expire_every: float = 60.0  # how often leads stuck behind an open breaker are checked


#: The longest wait a server's ``Retry-After`` may ask for (the client cuts longer hints to it).
LONGEST_HINT = 15 * 60.0


def wait_for(
    rule: Rule, outcome: Outcome, failures: int, timing: RetryTiming, rng: random.Random
) -> float:
    """Seconds until a retried lead is due: the one place a wait is decided.

    ``failures`` counts the lead's failed attempts; a server's own hint (``Retry-After``) is
    honoured, spread a little so that desks told the same do not return together."""
    t = timing
    if rule.wait is Wait.SOON:
        if outcome.retry_after:  # spread, yet never past the longest wait a hint may ask for
            return min(outcome.retry_after * rng.uniform(0.75, 1.5), LONGEST_HINT)
        return rng.uniform(*t.soon)
    if rule.wait in (Wait.BACKOFF, Wait.UNKNOWN):
        base = t.unknown_base if rule.wait is Wait.UNKNOWN else t.backoff_base
        window = min(t.backoff_cap, base * 2 ** max(0, failures - 1))
        delay = max(min(t.backoff_floor, window), rng.uniform(0, window))
        if outcome.retry_after:
            delay = max(delay, outcome.retry_after)
        return delay
    return 0.0


class BreakerMode(Enum):
    DOWN = "down"  # nothing answers: probe with a cheap list call at a bounded interval
    FAILING = "failing"  # the PBX answers with errors (an import): probe with one lead


class Breaker:
    """Closed: send freely. Open: one probe at a time until the server answers again.

    Opened by ``breaker_after`` server failures in a row, or at once by a refused connection.
    While nothing answers (``BreakerMode.DOWN``) the probe is a list call, spaced 1, 2, 4, 8 s
    then ``down_probe_every``: the PBX's return is noticed within seconds whatever the outage's
    length, at about five probes a minute. While the PBX answers with errors
    (``BreakerMode.FAILING``) the probe is a lead, spaced by backoff up to ``probe_cap``."""

    def __init__(self, timing: RetryTiming, rng: random.Random) -> None:
        self._timing = timing
        self._rng = rng
        self.failures = 0  # server failures in a row
        self.streak_from: float | None = None  # when the first of them came
        self.is_open = False
        self.mode = BreakerMode.DOWN
        self.probe_at = 0.0
        self.probing = False
        self._openings = 0  # probes failed since the breaker opened (or changed mode)

    def trouble(
        self,
        now: float,
        reason: RetryReason | None,
        *,
        probe: bool,
        no_answer: bool | None = None,
    ) -> None:
        """A server failure; ``no_answer``: nothing came back (defaults to ``reason`` being
        OFFLINE or MAINTENANCE)."""
        if no_answer is None:
            no_answer = reason in (RetryReason.OFFLINE, RetryReason.MAINTENANCE)
        mode = BreakerMode.DOWN if no_answer else BreakerMode.FAILING
        if self.failures == 0 or self.streak_from is None:
            self.streak_from = now
        self.failures += 1
        if probe:
            self.probing = False
        if self.is_open:
            if mode is not self.mode and (probe or mode is BreakerMode.FAILING):
                self.mode = mode  # it answers now, or stopped answering: probe the other way
                self._openings = 0
                if not probe and not self.probing:
                    self._schedule(now)
            if probe:
                self._schedule(now)
            return
        if self.failures >= self._timing.breaker_after or reason is RetryReason.OFFLINE:
            self.is_open = True
            self.mode = mode
            self._openings = 0
            self._schedule(now)

    def answered(self) -> None:
        """The server answered with a code: it is up (a probe, if one ran, is over)."""
        self.failures = 0
        self.streak_from = None
        self.is_open = False
        self.probing = False
        self._openings = 0

    def probe_ended(self) -> None:
        self.probing = False

    def gap(self) -> float:
        """Seconds from the end of the last probe to the next one."""
        t = self._timing
        n = self._openings
        if self.mode is BreakerMode.DOWN:
            ramp = t.down_probe_first * 2**n
            if ramp < t.down_probe_every[0]:
                return ramp * self._rng.uniform(0.75, 1.0)
            return self._rng.uniform(*t.down_probe_every)
        window = min(t.probe_cap, t.probe_base * 2**n)
        return max(t.probe_base / 2, self._rng.uniform(window / 2, window))

    def _schedule(self, now: float) -> None:
        self.probe_at = now + self.gap()
        self._openings += 1

    def allowance(self, now: float) -> int | None:
        """None: no restriction; else how many more calls may start now (0 or 1)."""
        if not self.is_open:
            return None
        if self.probing or now < self.probe_at:
            return 0
        return 1
