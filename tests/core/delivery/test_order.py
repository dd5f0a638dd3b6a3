"""The queue's orders: SQLite computes each lead's sort key as Python does, and sorts by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from noojee_desk.core.delivery.order import ID_MASK, STATUS_ORDER, STATUS_RANK, Order, sort_key
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.records import LeadInput, LeadQuery, State, Target

TARGET = Target(3, 42, 101)


def test_every_state_has_a_rank_and_those_needing_a_person_come_first() -> None:
    assert set(STATUS_ORDER) == set(State)
    needs_a_person = {State.FAILED, State.REJECTED, State.DUPLICATE, State.HELD}
    assert set(STATUS_ORDER[: len(needs_a_person)]) == needs_a_person
    assert STATUS_RANK[State.SENDING] < STATUS_RANK[State.QUEUED] < STATUS_RANK[State.DELIVERED]


@pytest.mark.parametrize("order", ["status", "updated"])
def test_sqlite_keys_are_python_keys_in_order_then_by_id(tmp_path: Path, order: Order) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    leads = [LeadInput({"Name": f"Seller {i}", "Phone": f"04120000{i:02d}"}) for i in range(40)]
    batch = outbox.enqueue("Demo", TARGET, leads, allow_duplicates=False, source="paste")
    outbox.enqueue("Other", TARGET, leads[:3], allow_duplicates=False, source="paste")
    first = batch.first_lead_id or 0
    states = list(State)
    # Times before 2020 (negative from the epoch), ties within a second, fractions.
    # A clock set decades off either way, and no clock at all: held to the key's range.
    times = [1.5, 1_577_836_799.9, 1_577_836_800.0, 1_764_000_000.25, 1_764_000_000.75]
    times += [7_258_118_400.0, -5e9, float("inf"), 1e300]
    with outbox.transaction() as db:
        for n in range(40):
            db.execute(
                "UPDATE leads SET state = ?, updated_at = ? WHERE id = ?",
                (states[n % len(states)].value, times[n % len(times)], first + n),
            )
    for query in (
        LeadQuery(profile="Demo"),
        LeadQuery(profile="Demo", states=frozenset({State.QUEUED, State.HELD})),
        LeadQuery(profile="Demo", search="seller 1"),
    ):
        every = outbox.leads(query)
        ordered, by_id = outbox.sort_keys(query, order)
        assert list(by_id) == [sort_key(lead, order) for lead in every]
        assert [key & ID_MASK for key in by_id] == [lead.id for lead in every]
        assert list(ordered) == sorted(by_id)
        if order == "status":
            every.sort(key=lambda lead: (STATUS_RANK[lead.state], lead.id))
        else:
            every.sort(key=lambda lead: (sort_key(lead, order) >> 32, lead.id))
        assert [key & ID_MASK for key in ordered] == [lead.id for lead in every]
    newer = outbox.sort_keys(LeadQuery(profile="Demo"), order, after=first + 29)
    assert [key & ID_MASK for key in newer[1]] == list(range(first + 30, first + 40))
    assert sorted(newer[0]) == list(newer[0])
