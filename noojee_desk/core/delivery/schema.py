"""The queue file's schema, its migrations, and rows turned into records."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from noojee_desk.core.delivery.records import CHUNK, BatchInfo, Lead, State, Target
from noojee_desk.core.pbx import EXTERNAL_ID_FIELD

SCHEMA_VERSION = 5


#: The tables a queue file has; a SQLite file without them is someone else's database.
OUR_TABLES = frozenset({"batches", "leads", "attempts", "lead_phones"})


_SCHEMA_V1 = """
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    template_id INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL,
    allocation_id INTEGER NOT NULL,
    allow_duplicates INTEGER NOT NULL,
    source TEXT NOT NULL,
    batch_key TEXT,
    total INTEGER NOT NULL,
    first_lead_id INTEGER,
    last_lead_id INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX batches_key ON batches(profile, batch_key);
CREATE TABLE leads (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    row_no INTEGER,
    profile TEXT NOT NULL,
    template_id INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL,
    allocation_id INTEGER NOT NULL,
    allow_duplicates INTEGER NOT NULL,
    fields TEXT NOT NULL,
    external_id TEXT NOT NULL,
    external_id_generated INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    unknown_outcome INTEGER NOT NULL DEFAULT 0,
    last_code INTEGER,
    last_message TEXT NOT NULL DEFAULT '',
    sentence TEXT NOT NULL DEFAULT '',
    fix TEXT NOT NULL DEFAULT '',
    budget_from REAL,
    first_attempt_at REAL,
    last_attempt_at REAL,
    delivered_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX leads_due ON leads(profile, state, next_attempt_at);
CREATE INDEX leads_batch ON leads(batch_id, state);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads(id),
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    code INTEGER,
    message TEXT NOT NULL DEFAULT '',
    latency REAL NOT NULL DEFAULT 0,
    http_status INTEGER
);
CREATE INDEX attempts_lead ON attempts(lead_id);
CREATE TABLE lead_phones (
    phone TEXT NOT NULL,
    lead_id INTEGER NOT NULL REFERENCES leads(id)
);
CREATE INDEX lead_phones_phone ON lead_phones(phone);
"""


# Each lead's content key (see ``content_key``): a rerun of an edited file, or a re-paste, finds
# the rows already delivered to the same target. Leads queued before this are keyed here too.
_SCHEMA_V2 = """
ALTER TABLE leads ADD COLUMN content_key TEXT;
UPDATE leads SET content_key = nd_content_key(fields);
CREATE INDEX leads_content ON leads(profile, content_key);
"""


#: Version 3: leads may be in the ``duplicate`` state. The state column has no CHECK constraint,
#: so nothing changes on disk; the version goes up so that an older Noojee Desk, which cannot
#: read that state, refuses the file with a clear message instead of failing on the lead.
_V3_DUPLICATE_STATE = """
UPDATE leads SET state = state WHERE 0
"""


#: Version 4: a year of history. ``lead_counts`` holds the number of leads per batch and state,
#: kept by triggers on a lead's state (a new batch writes its own row: a trigger per inserted
#: lead made queueing 100,000 leads 70% slower), so the status bar, the batch bars and the
#: queue view's row count are a handful of rows to read instead of a walk over every lead;
#: ``leads_profile`` gives the queue view its leads in queue order (by id) from an index.
_V4_HISTORY = """
CREATE TABLE lead_counts (
    batch_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    profile TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (batch_id, state)
) WITHOUT ROWID;
CREATE INDEX lead_counts_profile ON lead_counts(profile, state);
INSERT INTO lead_counts (batch_id, state, profile, n)
    SELECT batch_id, state, profile, COUNT(*) FROM leads GROUP BY batch_id, state;
CREATE TRIGGER lead_counts_update AFTER UPDATE OF state ON leads
WHEN old.state IS NOT new.state BEGIN
    UPDATE lead_counts SET n = n - 1 WHERE batch_id = old.batch_id AND state = old.state;
    INSERT INTO lead_counts (batch_id, state, profile, n)
    VALUES (new.batch_id, new.state, new.profile, 1)
    ON CONFLICT (batch_id, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER lead_counts_delete AFTER DELETE ON leads BEGIN
    UPDATE lead_counts SET n = n - 1 WHERE batch_id = old.batch_id AND state = old.state;
END;
CREATE INDEX leads_profile ON leads(profile, id)
"""


#: Version 5: ``leads.taken_back`` marks a lead whose fields went back to the grid (cancelled for
#: good: ``Outbox.take_back``), and the search's indexes (see ``search.py``). ``lead_tails`` holds
#: the reversed digits of each lead's phone-like field values; ``lead_words`` (FTS5, made beside
#: this migration when the sqlite3 module has FTS5) the words of its field values and external id.
#: Leads are indexed as they are queued; those queued before, and batches written by a process that
#: opened the file before it was upgraded (``indexed`` 0), are ranges of ids in ``search_backlog``
#: that ``Outbox.index_backlog`` indexes a chunk at a time, newest first, so opening a year of
#: history does not wait for it; the search's full scan covers them meanwhile.
_V5_SEARCH = """
CREATE TABLE lead_tails (
    tail TEXT NOT NULL,
    lead_id INTEGER NOT NULL
);
CREATE INDEX lead_tails_tail ON lead_tails(tail, lead_id);
CREATE TABLE search_backlog (
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL
);
INSERT INTO search_backlog (first_id, last_id)
    SELECT lo, hi FROM (SELECT MIN(id) AS lo, MAX(id) AS hi FROM leads) WHERE lo IS NOT NULL;
ALTER TABLE batches ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;
UPDATE batches SET indexed = 1;
CREATE INDEX batches_unindexed ON batches(id) WHERE indexed = 0;
ALTER TABLE leads ADD COLUMN taken_back INTEGER NOT NULL DEFAULT 0
"""


#: The word index (SQLite FTS5) of each lead's stored fields and external id: its text is read
#: from ``leads`` (``content='leads'``), so the file holds the index only, and a dump can read it.
WORD_INDEX = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS lead_words USING fts5(fields, external_id, "
    "content='leads', content_rowid='id', columnsize=0, detail=none, "
    "tokenize='unicode61 remove_diacritics 0')"
)


#: Migration n takes the schema from user_version n to n + 1. Append; never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    _SCHEMA_V1,
    _SCHEMA_V2,
    _V3_DUPLICATE_STATE,
    _V4_HISTORY,
    _V5_SEARCH,
)


LEAD_COLUMNS = (
    "id, batch_id, row_no, profile, template_id, campaign_id, allocation_id, allow_duplicates, "
    "fields, external_id, external_id_generated, state, attempts, next_attempt_at, "
    "unknown_outcome, last_code, last_message, sentence, fix, first_attempt_at, last_attempt_at, "
    "delivered_at, created_at, updated_at, budget_from, taken_back"
)


def statements(script: str) -> Iterator[str]:
    """The statements of a migration one by one (a trigger's body keeps its own semicolons)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        yield pending


def content_key(fields: dict[str, str]) -> str:
    """The normalised content of one lead: the same for the same fields in any order, with
    surrounding and repeated spaces and empty fields ignored (the external id is no content)."""
    items = sorted(
        (k, " ".join(v.split()))
        for k, v in fields.items()
        if k != EXTERNAL_ID_FIELD and v and not v.isspace()
    )
    encoded = json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:32]


def content_key_of_json(text: str) -> str:
    return content_key(fields_of(text))


def fields_of(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def lead_of(r: sqlite3.Row | tuple[Any, ...]) -> Lead:
    return Lead(
        id=r[0],
        batch_id=r[1],
        row=r[2],
        profile=r[3],
        target=Target(r[4], r[5], r[6]),
        allow_duplicates=bool(r[7]),
        fields=fields_of(r[8]),
        external_id=r[9],
        external_id_generated=bool(r[10]),
        state=State(r[11]),
        attempts=r[12],
        next_attempt_at=r[13],
        unknown_outcome=bool(r[14]),
        last_code=r[15],
        last_message=r[16],
        sentence=r[17],
        fix=r[18],
        first_attempt_at=r[19],
        last_attempt_at=r[20],
        delivered_at=r[21],
        created_at=r[22],
        updated_at=r[23],
        budget_from=r[24],
        taken_back=bool(r[25]),
    )


def batch_of(r: tuple[Any, ...]) -> BatchInfo:
    return BatchInfo(
        id=r[0],
        profile=r[1],
        target=Target(r[2], r[3], r[4]),
        allow_duplicates=bool(r[5]),
        source=r[6],
        key=r[7],
        total=r[8],
        first_lead_id=r[9],
        last_lead_id=r[10],
        created_at=r[11],
    )


BATCH_COLUMNS = (
    "id, profile, template_id, campaign_id, allocation_id, allow_duplicates, source, batch_key, "
    "total, first_lead_id, last_lead_id, created_at"
)


def chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def ago(seconds: float) -> str:
    days = int(max(0.0, seconds) // 86400)
    if days == 0:
        return "delivered today"
    if days == 1:
        return "delivered yesterday"
    return f"delivered {days} days ago"
