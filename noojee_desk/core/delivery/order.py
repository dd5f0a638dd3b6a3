"""The queue's orders: by id (queue order), by status and by last change, as one integer a lead.

A lead's sort key is ``major * 2**32 + id``: ``major`` is 0 in queue order (the key is the id),
the rank of its state (``STATUS_ORDER``) by status, and the whole seconds of its last change
(``updated_at``, counted from 2020) by last change; the id breaks ties, so every key is unique
and ``key & ID_MASK`` is the lead's id again. SQLite computes the same integer (``sql_key``)
that Python does (``sort_key``), so the queue view's rows, read in SQL ``ORDER BY`` key, stay in
that order as live changes move them. Leads changed within the same second are in queue order
(the view shows the time to the minute). Ids stay below 2**32 (four billion leads)."""

from __future__ import annotations

from typing import Literal

from noojee_desk.core.delivery.records import Lead, State

Order = Literal["id", "status", "updated"]

ID_BITS = 32
ID_MASK = (1 << ID_BITS) - 1

#: The order by status: what needs a person first (gave up, rejected, maybe a duplicate, kept
#: back), then what is on its way (being sent, waiting), then what is over (delivered,
#: cancelled). A queue paused for a person keeps its queued leads where queued leads are.
STATUS_ORDER: tuple[State, ...] = (
    State.FAILED,
    State.REJECTED,
    State.DUPLICATE,
    State.HELD,
    State.SENDING,
    State.QUEUED,
    State.DELIVERED,
    State.CANCELLED,
)
STATUS_RANK = {state: rank for rank, state in enumerate(STATUS_ORDER)}

#: The seconds of a last change are counted from 2020-01-01 (UTC): 31 bits reach past 2080.
UPDATED_EPOCH = 1_577_836_800
#: The largest major either way: the key stays a signed 64-bit integer in SQLite and array("q").
MAJOR_MAX = (1 << 31) - 1


def sort_key(lead: Lead, order: Order) -> int:
    """The lead's key in ``order`` (ascending keys: the order's rows, first to last)."""
    if order == "id":
        return lead.id
    if order == "status":
        return (STATUS_RANK[lead.state] << ID_BITS) + lead.id
    return (_seconds(lead.updated_at) << ID_BITS) + lead.id


def _seconds(updated_at: float) -> int:
    """Whole seconds from ``UPDATED_EPOCH``, held to 31 bits either way (a clock set decades
    off must not overflow the key); int() truncates toward zero, as SQLite's CAST does."""
    if updated_at != updated_at:  # NaN
        return 0
    if updated_at in (float("inf"), float("-inf")):
        return MAJOR_MAX if updated_at > 0 else -MAJOR_MAX
    return max(-MAJOR_MAX, min(MAJOR_MAX, int(updated_at) - UPDATED_EPOCH))


def sql_key(order: Order) -> str:
    """The SQL expression of ``sort_key`` over a row of ``leads``."""
    if order == "id":
        return "id"
    if order == "status":
        ranks = " ".join(f"WHEN '{state.value}' THEN {rank}" for state, rank in STATUS_RANK.items())
        major = f"(CASE state {ranks} ELSE {len(STATUS_ORDER)} END)"
    else:
        major = (
            f"MAX(-{MAJOR_MAX}, MIN({MAJOR_MAX}, "
            f"COALESCE(CAST(updated_at AS INTEGER), {UPDATED_EPOCH}) - {UPDATED_EPOCH}))"
        )
    return f"({major} * {1 << ID_BITS} + id)"
