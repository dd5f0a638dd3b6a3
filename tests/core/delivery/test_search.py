"""The queue's search on a real queue file: phone numbers typed in any format, words found by their
start from the index, the first results always a part of the complete answer, a scan that stops
when it is no longer wanted, and files of schema 4 upgraded and indexed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers.queue_files import queue_file_at

from noojee_desk.core.delivery.outbox import HAS_FTS5, Outbox, SearchStopped
from noojee_desk.core.delivery.records import LeadInput, LeadQuery, State, Target
from noojee_desk.core.delivery.search import needle_tail, phone_matches

TARGET = Target(3, 42, 101)

LEADS = [
    {"FirstName": "Anne", "LastName": "Müller", "Mobile": "0412 345 678", "Firm": "Müller Bau"},
    {"FirstName": "Bob", "LastName": "Familyman", "Phone": "(03) 9876 5432"},
    {"FirstName": "Carla", "LastName": "Smith", "Phone": "+61 2 9999 0000"},
    {"FirstName": "Dan", "LastName": "Annexe", "Notes": "call after 5678"},
]


def queue(outbox: Outbox, leads: list[dict[str, str]]) -> list[int]:
    batch = outbox.enqueue(
        "p", TARGET, [LeadInput(f) for f in leads], allow_duplicates=False, source="paste"
    )
    return list(range(batch.first_lead_id or 0, (batch.last_lead_id or 0) + 1))


def search(outbox: Outbox, needle: str) -> tuple[list[int], list[int]]:
    """What the indexes alone find first, and what the scan finds."""
    query = LeadQuery(profile="p", search=needle)
    first = list(outbox.first_ids(query, scan_for=0))
    every = list(outbox.lead_ids(query))
    assert set(first) <= set(every), needle
    assert outbox.count(query) == len(every), needle
    return first, every


@pytest.mark.parametrize(
    "typed",
    ["0412 345 678", "0412345678", "+61412345678", "+61 412 345 678", "412-345-678", "345678"],
)
def test_a_phone_number_typed_in_any_format_finds_the_lead_from_the_index(
    tmp_path: Path, typed: str
) -> None:
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        ids = queue(outbox, LEADS)
        assert search(outbox, typed) == ([ids[0]], [ids[0]])


def test_the_phone_rule_needs_four_digits_and_a_phone_like_text(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        ids = queue(outbox, LEADS)
        assert search(outbox, "(03) 9876-5432") == ([ids[1]], [ids[1]])
        assert search(outbox, "+61 3 9876 5432")[1] == [ids[1]]  # the typed number ends with it
        assert search(outbox, "02 9999 0000")[1] == [ids[2]]
        # "5678" ends a phone and is a word of a note: both from the indexes.
        assert search(outbox, "5678") == ([ids[0], ids[3]], [ids[0], ids[3]])
        assert search(outbox, "after 5678") == ([ids[3]], [ids[3]])
        assert needle_tail("678") is None
        assert needle_tail("0001") is None
        assert needle_tail("Anne 0412") is None  # words and digits: the text rule only
        assert search(outbox, "9876 5431") == ([], [])


@pytest.mark.skipif(not HAS_FTS5, reason="this sqlite3 module has no FTS5")
def test_a_word_typed_finds_the_leads_with_a_word_starting_with_it(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        ids = queue(outbox, LEADS)
        assert search(outbox, "Anne") == ([ids[0], ids[3]], [ids[0], ids[3]])
        assert search(outbox, "famil") == ([ids[1]], [ids[1]])
        assert search(outbox, "müller b") == ([ids[0]], [ids[0]])
        assert search(outbox, "anne müller") == ([], [])  # two fields: no text has both
        # The index folds Ü as well; the scan's rule (ASCII letters only) decides.
        assert search(outbox, "MÜLLER") == ([], [])
        assert search(outbox, "müller") == ([ids[0]], [ids[0]])
        # Only the scan finds a part of a word, and the messages.
        assert search(outbox, "amilyma") == ([], [ids[1]])
        assert search(outbox, "nnex") == ([], [ids[3]])
        external = outbox.get(ids[2]).external_id  # type: ignore[union-attr]
        assert search(outbox, external) == ([ids[2]], [ids[2]])
        assert search(outbox, '"Anne" OR *') == ([], [])  # no FTS5 syntax gets through


def test_first_results_read_in_queue_order_fill_the_limit_or_are_the_whole_answer(
    tmp_path: Path,
) -> None:
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        ids = queue(outbox, LEADS * 5)
        query = LeadQuery(profile="p", search="an")  # Anne, Dan and Annexe, in every copy
        assert list(outbox.first_ids(query, limit=3)) == list(outbox.lead_ids(query))[:3]
        assert list(outbox.first_ids(query)) == list(outbox.lead_ids(query))
        outbox.cancel(ids[:4])
        waiting = LeadQuery(profile="p", states=frozenset({State.QUEUED}), search="0412345678")
        assert list(outbox.first_ids(waiting, scan_for=0)) == ids[4::4]


def test_a_scan_that_is_no_longer_wanted_stops_early(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        queue(outbox, LEADS * 2000)
        query = LeadQuery(profile="p", search="Smith")
        asked: list[bool] = []

        def stale() -> bool:
            asked.append(True)
            return len(asked) > 2

        with pytest.raises(SearchStopped):
            outbox.lead_ids(query, stop=stale)
        assert len(asked) == 3  # asked as it went; it ended at the first True
        assert len(outbox.lead_ids(query, stop=lambda: False)) == 2000  # the connection is fine


def _schema_4_file(path: Path, leads: int) -> None:
    """A queue file as the previous release made it (schema 4), with two batches of leads."""
    db = queue_file_at(path, 4)
    half = leads // 2
    for batch, (first, last) in enumerate(((1, half), (half + 1, leads)), start=1):
        db.execute(
            "INSERT INTO batches (id, profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, source, total, first_lead_id, last_lead_id, created_at) "
            f"VALUES ({batch}, 'p', 3, 42, 101, 0, 'x', {last - first + 1}, {first}, {last}, 0)"
        )
    db.executemany(
        "INSERT INTO leads (id, batch_id, profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, fields, external_id, external_id_generated, state, "
        "next_attempt_at, unknown_outcome, created_at, updated_at) VALUES "
        "(?, ?, 'p', 3, 42, 101, 0, ?, ?, 1, 'delivered', 0, 0, 0, 0)",
        (
            (
                i,
                1 + (i > half),
                f'{{"Name": "Person{i} Old", "Phone": "0400 {i:06d}"}}',
                f"nd-{i}",
            )
            for i in range(1, leads + 1)
        ),
    )
    db.execute(
        "INSERT INTO lead_counts (batch_id, state, profile, n) "
        "SELECT batch_id, state, profile, COUNT(*) FROM leads GROUP BY batch_id, state"
    )
    db.close()


def test_a_schema_4_file_opens_at_once_and_its_leads_become_searchable(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    _schema_4_file(path, 2500)
    with Outbox(path) as outbox:
        assert outbox.schema_version == 5
        assert outbox.count() == 2500
        assert outbox.search_backlog() == 2500
        # Before the backlog is indexed the scan finds them, the phone rule included.
        assert search(outbox, "0400 001 234") == ([], [1234])
        assert search(outbox, "Person1234") == ([], [1234])
        assert outbox.index_backlog(1000) == 1500  # newest first
        assert search(outbox, "0400 002 345") == ([2345], [2345])
        assert search(outbox, "0400 001 234") == ([], [1234])
        while outbox.index_backlog(1000):
            pass
        assert outbox.search_backlog() == 0
        assert search(outbox, "0400 001 234") == ([1234], [1234])
        if HAS_FTS5:
            assert search(outbox, "person1234")[0] == [1234]
        new = queue(outbox, [{"Name": "Person New", "Phone": "0400 999 999"}])
        assert search(outbox, "999999") == (new, new)
    with Outbox(path) as outbox:  # nothing is done twice on the next open
        assert outbox.search_backlog() == 0
        assert search(outbox, "0400 001 234") == ([1234], [1234])


def test_on_open_counts_and_indexes_of_batches_an_older_opener_wrote_are_made(
    tmp_path: Path,
) -> None:
    """A process that opened the file before it was upgraded writes batches as it knew how:
    without their per-batch counts (schema 3) or their search entries (schema 4)."""
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as outbox:
        queue(outbox, LEADS)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "INSERT INTO batches (id, profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, source, total, first_lead_id, last_lead_id, created_at) "
        "VALUES (2, 'p', 3, 42, 101, 0, 'old', 2, 5, 6, 0)"
    )
    for lead_id, state in ((5, "queued"), (6, "delivered")):
        db.execute(
            "INSERT INTO leads (id, batch_id, profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, fields, external_id, external_id_generated, state, "
            "next_attempt_at, unknown_outcome, created_at, updated_at) VALUES "
            f"({lead_id}, 2, 'p', 3, 42, 101, 0, '{{\"Phone\": \"0299990{lead_id}00\"}}', "
            f"'nd-{lead_id}', 1, '{state}', 0, 0, 0, 0)"
        )
    db.execute("UPDATE lead_counts SET n = n + 1 WHERE batch_id = 1")  # and one count is off
    db.close()
    with Outbox(path) as outbox:
        assert outbox.counts(batch_id=1).total == 4
        assert outbox.counts(batch_id=2).as_dict()["queued"] == 1
        assert outbox.counts(batch_id=2).as_dict()["delivered"] == 1
        assert outbox.search_backlog() == 2
        assert search(outbox, "02 9999 0500") == ([], [5])
        assert outbox.index_backlog() == 0
        assert search(outbox, "02 9999 0500") == ([5], [5])
    with Outbox(path) as outbox:
        assert outbox.search_backlog() == 0
        assert outbox.counts("p").total == 6


@pytest.mark.parametrize("indexed", [True, False])
def test_the_phone_rule_in_python_is_the_rule_in_sql(tmp_path: Path, indexed: bool) -> None:
    """The same leads from the phone index and, not indexed yet, from the rule in SQL."""
    values = [
        "0412 345 678", " (03) 9876 5432 ", "+61 2 9999 0000", "call after 5678", "2024",
        "+61-2-9999-0000", "04.12.34.56.78", "0412\t345678", "\u0660\u0664\u0661\u0662345678",
        "12-3456", "+", "000000123456", "(0412) 345678 ext", "+(04)12345678",
    ]  # fmt: skip
    typed = [
        "345678", "+61 412 345 678", "0398765432", "61299990000", "5678", "2024", "0000",
        "123456", "0412345678", "(02) 9999-0000", "99990000",
    ]  # fmt: skip
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        ids = queue(outbox, [{"V": v} for v in values])
        if not indexed:  # as a file of schema 4 has them: in the backlog
            with outbox.transaction() as db:
                db.execute("DELETE FROM lead_tails")
                db.execute("INSERT INTO search_backlog VALUES (?, ?)", (ids[0], ids[-1]))
        for needle in typed:
            by_python = [i for i, v in zip(ids, values, strict=True) if phone_matches(needle, [v])]
            _first, every = search(outbox, needle)
            text = [i for i, v in zip(ids, values, strict=True) if needle in v]
            assert every == sorted({*by_python, *text}), needle
        # A tab, other digits or words in the value: not a phone number.
        assert search(outbox, "0412345678")[1] == [ids[0], ids[6], ids[13]]


@pytest.mark.skipif(not HAS_FTS5, reason="this sqlite3 module has no FTS5")
def test_without_fts5_the_scan_finds_the_words_and_a_later_open_adds_the_word_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import noojee_desk.core.delivery.outbox as module

    monkeypatch.setattr(module, "HAS_FTS5", False)
    monkeypatch.setattr(module, "_TOLD_NO_FTS5", False)
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as outbox:
        ids = queue(outbox, LEADS)
        assert search(outbox, "Carla") == ([], [ids[2]])
        assert search(outbox, "0412 345 678") == ([ids[0]], [ids[0]])  # the phone index is SQL
    assert "no FTS5" in caplog.text
    monkeypatch.setattr(module, "HAS_FTS5", True)
    with Outbox(path) as outbox:
        assert search(outbox, "Carla") == ([], [ids[2]])  # queued while it was missing
        (new,) = queue(outbox, [{"FirstName": "Carla", "LastName": "Jones"}])
        assert search(outbox, "Carla") == ([new], [ids[2], new])
