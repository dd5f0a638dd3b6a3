"""What the queue holds and says: lead states, leads, batches, attempts, queries, errors."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from noojee_desk.core.pbx import EXTERNAL_ID_FIELD

CHUNK = 500  # ids per SQL "IN (...)" list


class State(StrEnum):
    """Where a lead is.

    ``held`` means parked by the user (it is not sent until retried). A queue that needs attention
    (key rejected, wrong address, TLS) is paused as a whole instead: its leads stay ``queued``.
    ``duplicate`` is final: a 105 (the phone is already in the campaign) after an attempt whose
    outcome is unknown; that may be this lead's own earlier attempt, or another lead's.
    """

    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"
    HELD = "held"
    CANCELLED = "cancelled"
    DUPLICATE = "duplicate"


FINAL_STATES = frozenset(
    {State.DELIVERED, State.REJECTED, State.FAILED, State.CANCELLED, State.DUPLICATE}
)


OPEN_STATES = frozenset({State.QUEUED, State.SENDING, State.HELD})

#: What a lead taken back to the grid says in its server-message column (``Outbox.take_back``;
#: ``leads.taken_back`` is what keeps it cancelled for good).
TAKEN_BACK = "Taken back to the grid"


class OutboxError(Exception):
    """The outbox file cannot be used; the message says why and what to do."""


class OutboxDamaged(OutboxError):
    """The file is damaged or not a queue at all: setting it aside and starting empty helps."""


class OutboxBusy(OutboxError):
    """Another Noojee Desk process is already sending this profile's queue.

    ``holder`` says which one, as far as its lock file tells ("" when it does not)."""

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked" / "busy": another writer holds the file for now."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """What a SQLite error on the queue file means, in a person's words."""

    sentence: str
    fix: str
    damaged: bool = False  # set the file aside and start with an empty queue
    locked: bool = False  # another writer: wait and try again, nothing is wrong


def storage_problem(exc: BaseException, path: os.PathLike[str] | str = "") -> StorageProblem:
    """The meaning of ``exc`` (a ``sqlite3.Error`` or an ``OutboxError``) for the queue file."""
    where = f" {path}" if path else ""
    if isinstance(exc, OutboxDamaged):
        return StorageProblem(str(exc), "", damaged=True)
    if isinstance(exc, OutboxError):
        return StorageProblem(str(exc), "")
    text = str(exc).lower()
    if is_locked(exc):
        return StorageProblem(
            f"Another program is writing to the queue file{where} right now.",
            "Nothing to do: it is tried again when the other write ends.",
            locked=True,
        )
    if "full" in text:
        return StorageProblem(
            f"The disk holding the queue file{where} is full.",
            "Free some disk space, then try again; nothing was half-queued.",
        )
    if "readonly" in text or "read-only" in text or "permission" in text:
        return StorageProblem(
            f"The queue file{where} cannot be written (it or its folder is read-only).",
            "Check the data folder's permissions, then try again.",
        )
    if "i/o" in text or ("disk" in text and "image" not in text):
        return StorageProblem(
            f"The disk reported an error while using the queue file{where} ({exc}).",
            "Check the disk (or network drive) the data folder is on, then try again.",
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return StorageProblem(
            f"The queue file{where} is damaged ({exc}).",
            "Move it aside to start with an empty queue; support can try to recover it.",
            damaged=True,
        )
    return StorageProblem(
        f"The queue file{where} cannot be used ({exc}).",
        "Check the data folder, then try again; if this persists, contact support.",
    )


@dataclass(frozen=True, slots=True)
class Target:
    """The three ids every insert names."""

    template_id: int
    campaign_id: int
    allocation_id: int


@dataclass(frozen=True, slots=True)
class LeadInput:
    """One lead to queue: the fields to send (already validated), its E.164 phones, its row."""

    fields: dict[str, str]
    phones: frozenset[str] = frozenset()
    row: int | None = None


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """One enqueue: a pasted grid, a file, or a single lead from the form."""

    id: int
    profile: str
    target: Target
    allow_duplicates: bool
    source: str
    created_at: float
    total: int
    key: str | None = None
    first_lead_id: int | None = None
    last_lead_id: int | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """An earlier delivery of the same content to the same target."""

    lead_id: int
    external_id: str
    delivered_at: float | None


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What ``queue_once`` did: queued a ``new`` batch (leaving out ``skipped`` rows, by their
    index in the input), or found the input's ``open`` or ``finished`` batch and queued nothing."""

    batch: BatchInfo
    how: str  # "new" | "open" | "finished"
    skipped: dict[int, Delivered] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lead:
    """One lead as stored; everything the queue view shows."""

    id: int
    batch_id: int
    row: int | None
    profile: str
    target: Target
    allow_duplicates: bool
    fields: dict[str, str]
    external_id: str
    external_id_generated: bool
    state: State
    attempts: int
    next_attempt_at: float
    unknown_outcome: bool  # an earlier attempt may have landed: 112/105 then means delivered
    last_code: int | None
    last_message: str
    sentence: str
    fix: str
    first_attempt_at: float | None
    last_attempt_at: float | None
    delivered_at: float | None
    created_at: float
    updated_at: float
    budget_from: float | None = None  # when the retry budget started (first attempt or re-queue)
    taken_back: bool = False  # its fields went back to the grid: never sent or retried again

    def fields_to_send(self) -> dict[str, str]:
        """The body of the insert call: the fields plus the external id."""
        body = dict(self.fields)
        body[EXTERNAL_ID_FIELD] = self.external_id
        return body


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call for one lead, as logged."""

    lead_id: int
    started_at: float
    finished_at: float
    outcome: str  # an outcome kind ("delivered", "rejected", "retry_later", "unknown", "blocked")
    code: int | None
    message: str
    latency: float
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """What the dispatcher decided after an attempt; written with the attempt in one commit."""

    state: State
    next_attempt_at: float | None = None
    unknown_outcome: bool | None = None  # None: keep
    code: int | None = None
    message: str = ""
    sentence: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class LeadQuery:
    """A filter for the queue view: by profile, batch, states and a free-text search."""

    profile: str | None = None
    batch_id: int | None = None
    states: frozenset[State] | None = None
    search: str = ""
    lead_ids: Sequence[int] | None = None


@dataclass(slots=True)
class Counts:
    """Leads per state."""

    by_state: dict[State, int] = field(default_factory=lambda: dict.fromkeys(State, 0))

    def __getitem__(self, state: State) -> int:
        return self.by_state.get(state, 0)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def open(self) -> int:
        return sum(self.by_state[s] for s in OPEN_STATES)

    def as_dict(self) -> dict[str, int]:
        return {s.value: n for s, n in self.by_state.items()}


_B32 = b"abcdefghijklmnopqrstuvwxyz234567"
_TO_B32 = bytes(_B32[b & 31] for b in range(256))  # 256 is a multiple of 32: stays uniform


def new_external_ids(count: int) -> list[str]:
    """``count`` ids of ``nd-`` and 16 base32 characters (80 random bits each, short enough
    to read out on the phone)."""
    raw = secrets.token_bytes(16 * count).translate(_TO_B32).decode("ascii")
    return ["nd-" + raw[i : i + 16] for i in range(0, 16 * count, 16)]
