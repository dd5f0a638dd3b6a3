"""The durable outbox: every queued lead, its state and its attempt log, in one SQLite file."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from noojee_desk.core.delivery.locks import ProfileLock
from noojee_desk.core.delivery.order import Order, sql_key
from noojee_desk.core.delivery.records import (
    TAKEN_BACK,
    Attempt,
    BatchInfo,
    Counts,
    Delivered,
    Enqueued,
    Lead,
    LeadInput,
    LeadQuery,
    OutboxDamaged,
    OutboxError,
    State,
    Target,
    Transition,
    new_external_ids,
)
from noojee_desk.core.delivery.schema import (
    BATCH_COLUMNS,
    LEAD_COLUMNS,
    MIGRATIONS,
    OUR_TABLES,
    WORD_INDEX,
    ago,
    batch_of,
    chunks,
    content_key,
    content_key_of_json,
    fields_of,
    lead_of,
    statements,
)
from noojee_desk.core.delivery.search import (
    AFTER_DIGITS,
    PHONE_SQL,
    needle_tail,
    phone_sql_params,
    tail_prefixes,
    value_tails,
    words_query,
)
from noojee_desk.core.files import private_file, private_folder
from noojee_desk.core.pbx import DUPLICATE, EXTERNAL_ID_FIELD
from noojee_desk.core.redact import redact_text

log = logging.getLogger(__name__)

#: No wait this version gives is longer than a day (hints are capped at 15 minutes, backoff at
#: 5): a queued lead due later than this was parked by an older version, and is due at once.
PARKED_BEYOND = 86400.0

#: Leads other than those ``take_back`` moved.
_NOT_TAKEN_BACK = "AND taken_back = 0"

#: An empty queue file younger than this is being created by another opener, not damaged.
_NEW_FILE_GRACE = 10.0

#: The first results a search shows from its indexes (the scan adds the rest).
FIRST_RESULTS = 1000

#: How long a search's first results may read leads in queue order before the indexes are asked.
FIRST_SCAN_S = 0.03

#: SQLite virtual machine steps between two looks at whether a scan is still wanted.
_STOP_STEPS = 20000


def _has_fts5() -> bool:
    """Whether this sqlite3 module has FTS5 (Debian's and python.org's builds do)."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    except sqlite3.Error:
        return False
    finally:
        probe.close()
    return True


HAS_FTS5 = _has_fts5()
_TOLD_NO_FTS5 = False


#: The query of every lead (a frozen query, so one shared default is safe).
EVERY_LEAD = LeadQuery()


@dataclass(frozen=True, slots=True)
class Record:
    """An answer to log (``Outbox.record``) in a group of writes."""

    attempt: Attempt
    transition: Transition


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim (``Outbox.claim_due``) in a group of writes."""

    profile: str
    limit: int
    now: float
    due_by: float | None = None
    generated_only: bool = False


GroupWrite = Record | Claim


class Outbox:
    """The SQLite store of one installation's queue.

    One ``Outbox`` is one connection, used from one thread (normally the event loop's). Every state
    change is committed durably (WAL, ``synchronous=FULL``) before the method returns. Short
    calls (claim, record, queries for one page) take well under a millisecond to a few
    milliseconds. Long operations (enqueueing tens of thousands of leads, exporting) should run in
    an executor thread on an ``Outbox`` opened in that thread on the same file: SQLite lets the
    readers go on meanwhile, and a writer that meets the lock waits ``busy_timeout`` seconds.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        # A file that is not there, or empty and only just made (by another opener that is
        # creating the tables this moment), is a new queue; any other must hold one.
        try:
            made = self.path.stat()
            new = made.st_size == 0 and time.time() - made.st_mtime < _NEW_FILE_GRACE
        except FileNotFoundError:
            new = True
        except OSError:
            new = False
        try:
            private_folder(self.path.parent)
            private_file(self.path)  # the -wal and -shm files SQLite makes take its mode
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=busy_timeout, check_same_thread=True
            )
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"The queue file {self.path} cannot be opened: {exc}") from exc
        try:
            self._check_ours(new)  # first: the pragmas below would write to an empty file
            self._db.create_function("nd_content_key", 1, content_key_of_json, deterministic=True)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._words = self._word_index()
            self._check_counts()
            self._unpark()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, I/O: maybe fine
                raise OutboxError(
                    f"The queue file {self.path} cannot be used right now ({exc}). Check that "
                    "its folder can be written to and that no other program holds the file, "
                    "then start again."
                ) from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise OutboxDamaged(
                    f"The queue file {self.path} is damaged or not a Noojee Desk queue ({exc}). "
                    "Move it aside to start with an empty queue; support can try to recover it."
                ) from exc
            raise

    # -- plumbing --------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """The write transaction every change here runs in, for SQL of one's own: committed on
        leaving, rolled back on an error (a failed COMMIT included)."""
        return self._write()

    @property
    def in_transaction(self) -> bool:
        """Whether the connection is inside a transaction (between calls it never should be)."""
        return self._db.in_transaction

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction (BEGIN IMMEDIATE takes the write lock up front)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full, I/O) must not leave the connection in a transaction
            # that every later write would trip over; SQLite may have rolled back already.
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def _check_ours(self, new: bool) -> None:
        """A file that was there before must be a queue: an empty (0-byte) file or another
        program's SQLite database is damaged, never opened as an empty queue."""

        def look() -> tuple[int, set[str]]:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            rows = self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            return int(version), {row[0] for row in rows}

        version, tables = look()
        if version == 0 and not tables:
            if new:
                return  # a new queue
            empty = True
            with contextlib.suppress(OSError):
                empty = self.path.stat().st_size == 0
            if not empty:  # another opener may be creating the tables: wait for its commit
                with self._write():
                    version, tables = look()
        if version == 0 or not tables >= OUR_TABLES:
            what = "is empty" if not tables else "is not a Noojee Desk queue"
            raise OutboxDamaged(
                f"The queue file {self.path} {what} (its leads may have been lost). Move it "
                "aside to start with an empty queue; support can try to recover it."
            )

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise OutboxError(
                f"The queue file {self.path} was written by a newer Noojee Desk (schema "
                f"{version}); update Noojee Desk to open it."
            )
        if version == len(MIGRATIONS):
            return
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # another opener may win
            for number in range(version, len(MIGRATIONS)):
                for statement in statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
            if HAS_FTS5:  # the word index beside the search's (schema 5)
                db.execute(WORD_INDEX)

    def _word_index(self) -> bool:
        """Whether the word index is there and usable. A file upgraded where the sqlite3 module
        had no FTS5 gets it now, for the leads queued from now on (the scan finds the others)."""
        there = (
            self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'lead_words'").fetchone()
            is not None
        )
        if not HAS_FTS5:
            global _TOLD_NO_FTS5
            if not _TOLD_NO_FTS5:
                _TOLD_NO_FTS5 = True
                log.warning("This sqlite3 module has no FTS5: the queue's search scans the leads")
            return False
        if not there:
            with self._write() as db:
                db.execute(WORD_INDEX)
        return True

    def _unpark(self) -> None:
        """Queued leads an older version parked beyond any wait this one gives (a Retry-After
        of ``inf``, ``1e400`` or days, stored before such hints were bounded) are due now, so
        their next answer decides; a seek of ``leads_due`` per profile when there are none."""
        now = self._clock()
        beyond = now + PARKED_BEYOND
        profiles = [r[0] for r in self._db.execute("SELECT DISTINCT profile FROM lead_counts")]
        parked = [
            profile
            for profile in profiles
            if self._db.execute(
                "SELECT 1 FROM leads WHERE profile = ? AND state = 'queued' "
                "AND next_attempt_at > ? LIMIT 1",
                (profile, beyond),
            ).fetchone()
        ]
        if not parked:
            return
        with self._write() as db:
            moved = sum(
                db.execute(
                    "UPDATE leads SET next_attempt_at = ? WHERE profile = ? AND state = 'queued' "
                    "AND next_attempt_at > ?",
                    (now, profile, beyond),
                ).rowcount
                for profile in parked
            )
        log.warning("%d queued leads were parked beyond any retry wait; they are due now", moved)

    def _check_counts(self) -> None:
        """Batches written by a process that opened the file before it was upgraded: their
        per-batch counts are made again from their leads when they do not add up to the
        batch, and their leads go to the search's backlog (a few rows to read when all is
        well)."""
        wrong = [
            r[0]
            for r in self._db.execute(
                "SELECT b.id FROM batches b LEFT JOIN (SELECT batch_id, SUM(n) AS n "
                "FROM lead_counts GROUP BY batch_id) c ON c.batch_id = b.id "
                "WHERE COALESCE(c.n, 0) != b.total"
            )
        ]
        unindexed = self._db.execute("SELECT 1 FROM batches WHERE indexed = 0 LIMIT 1").fetchone()
        if not wrong and unindexed is None:
            return
        with self._write() as db:
            for batch_id in wrong:
                db.execute("DELETE FROM lead_counts WHERE batch_id = ?", (batch_id,))
                db.execute(
                    "INSERT INTO lead_counts (batch_id, state, profile, n) "
                    "SELECT batch_id, state, profile, COUNT(*) FROM leads WHERE batch_id = ? "
                    "GROUP BY state",
                    (batch_id,),
                )
            db.execute(
                "INSERT INTO search_backlog (first_id, last_id) SELECT first_lead_id, "
                "last_lead_id FROM batches WHERE indexed = 0 AND first_lead_id IS NOT NULL"
            )
            db.execute("UPDATE batches SET indexed = 1 WHERE indexed = 0")
        if wrong:
            log.warning("The lead counts of batches %s were made again from their leads", wrong)

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- enqueue ---------------------------------------------------------------------------------

    def enqueue(
        self,
        profile: str,
        target: Target,
        leads: Sequence[LeadInput],
        *,
        allow_duplicates: bool,
        source: str,
        key: str | None = None,
    ) -> BatchInfo:
        """Queue ``leads`` as one batch, in one transaction; they are due at once.

        Each lead gets a generated external id unless its fields carry a non-empty
        ``njExternalLeadId``. ``key`` (optional) identifies the input; ``queue_once`` uses it
        to resume a batch instead of queueing it again.
        About 1.3 s per 100,000 leads here: run big batches in an executor thread.
        """
        prepared, phones = self._prepare(leads)
        with self._write() as db:
            return self._insert_batch(
                db, profile, target, prepared, phones, allow_duplicates, source, key
            )

    def queue_once(
        self,
        profile: str,
        target: Target,
        leads: Sequence[LeadInput],
        *,
        allow_duplicates: bool,
        source: str,
        key: str | None = None,
        skip_delivered: bool = True,
        reuse_finished: bool = True,
    ) -> Enqueued:
        """Queue ``leads`` unless they are queued already, as one atomic step.

        In one write transaction (so two processes queueing the same input at once queue it
        once): the newest batch with ``key`` that still has open leads is resumed as it is; with
        ``reuse_finished``, a finished one with ``key`` and ``target`` is given back too (the
        caller decides what to retry). Otherwise the leads are queued as a new batch, leaving out
        (with ``skip_delivered``) those whose content was delivered to ``target`` before; they
        are in ``Enqueued.skipped`` by their index in ``leads``.
        """
        prepared, phones = self._prepare(leads)
        keys = [content_key(fields_of(body)) for _row, body, _ext, _gen, _values in prepared]
        with self._write() as db:
            if key is not None:
                found = self._batch_by_key(db, profile, key, target, reuse_finished)
                if found is not None:
                    batch, is_open = found
                    return Enqueued(batch, "open" if is_open else "finished")
            skipped: dict[int, Delivered] = {}
            if skip_delivered:
                done = self._delivered(db, profile, target, keys)
                skipped = {i: done[k] for i, k in enumerate(keys) if k in done}
            if skipped:
                keep = [i for i in range(len(prepared)) if i not in skipped]
                renumber = {old: new for new, old in enumerate(keep)}
                prepared = [prepared[i] for i in keep]
                keys = [keys[i] for i in keep]
                phones = [(p, renumber[i]) for p, i in phones if i in renumber]
            batch = self._insert_batch(
                db, profile, target, prepared, phones, allow_duplicates, source, key, keys
            )
        return Enqueued(batch, "new", skipped)

    @staticmethod
    def _prepare(
        leads: Sequence[LeadInput],
    ) -> tuple[list[tuple[Any, ...]], list[tuple[str, int]]]:
        encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        generated = iter(new_external_ids(len(leads)))
        prepared: list[tuple[Any, ...]] = []
        phones: list[tuple[str, int]] = []
        for index, lead in enumerate(leads):
            body = lead.fields
            if not all(type(k) is str and type(v) is str for k, v in body.items()):
                body = {str(k): "" if v is None else str(v) for k, v in body.items()}
            given = body.get(EXTERNAL_ID_FIELD, "").strip()
            if EXTERNAL_ID_FIELD in body:
                body = {k: v for k, v in body.items() if k != EXTERNAL_ID_FIELD}
            external_id = given or next(generated)
            values = tuple(body.values())  # for the search's indexes
            prepared.append((lead.row, encode(body), external_id, 0 if given else 1, values))
            if lead.phones:
                phones.extend((p, index) for p in lead.phones)
        return prepared, phones

    def _batch_by_key(
        self,
        db: sqlite3.Connection,
        profile: str,
        key: str,
        target: Target,
        reuse_finished: bool,
    ) -> tuple[BatchInfo, bool] | None:
        """The newest open batch with ``key`` (True), else the newest finished one (False)."""
        row = db.execute(
            f"SELECT {BATCH_COLUMNS} FROM batches b WHERE profile = ? AND batch_key = ? "
            "AND EXISTS (SELECT 1 FROM lead_counts WHERE batch_id = b.id "
            "AND state IN ('queued', 'sending', 'held') AND n > 0) ORDER BY id DESC LIMIT 1",
            (profile, key),
        ).fetchone()
        if row is not None:
            return batch_of(row), True
        if not reuse_finished:
            return None
        row = db.execute(
            f"SELECT {BATCH_COLUMNS} FROM batches WHERE profile = ? AND batch_key = ? "
            "AND template_id = ? AND campaign_id = ? AND allocation_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (profile, key, target.template_id, target.campaign_id, target.allocation_id),
        ).fetchone()
        return None if row is None else (batch_of(row), False)

    def _delivered(
        self, db: sqlite3.Connection, profile: str, target: Target, keys: Iterable[str]
    ) -> dict[str, Delivered]:
        wanted = list(set(keys))
        found: dict[str, Delivered] = {}
        for chunk in chunks(wanted):  # type: ignore[arg-type]
            marks = ",".join("?" * len(chunk))
            for ckey, lead_id, external_id, when in db.execute(
                "SELECT content_key, id, external_id, delivered_at FROM leads "
                f"WHERE profile = ? AND content_key IN ({marks}) AND state = 'delivered' "
                "AND template_id = ? AND campaign_id = ? AND allocation_id = ? "
                "ORDER BY delivered_at DESC",
                (profile, *chunk, target.template_id, target.campaign_id, target.allocation_id),
            ):
                found[ckey] = Delivered(lead_id, external_id, when)  # the earliest one wins
        return found

    def delivered_matches(
        self, profile: str, target: Target, fields: Iterable[dict[str, str]]
    ) -> list[Delivered | None]:
        """For each lead's fields: its earlier delivery to ``target`` by content, or None."""
        keys = [content_key(f) for f in fields]
        done = self._delivered(self._db, profile, target, keys)
        return [done.get(k) for k in keys]

    def delivered_by_key(
        self, profile: str, target: Target, keys: Iterable[str]
    ) -> dict[str, Delivered]:
        """Of these content keys (``content_key`` of a lead's fields), the ones delivered to
        ``target`` before, each with its earliest delivery; a read, nothing is changed."""
        return self._delivered(self._db, profile, target, keys)

    def _insert_batch(
        self,
        db: sqlite3.Connection,
        profile: str,
        target: Target,
        prepared: list[tuple[Any, ...]],
        phones: list[tuple[str, int]],
        allow_duplicates: bool,
        source: str,
        key: str | None,
        keys: list[str] | None = None,
    ) -> BatchInfo:
        now = self._clock()
        if keys is None:
            keys = [content_key(fields_of(body)) for _row, body, _ext, _gen, _values in prepared]
        cursor = db.execute(
            "INSERT INTO batches (profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, source, batch_key, total, created_at, indexed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (
                profile,
                target.template_id,
                target.campaign_id,
                target.allocation_id,
                int(allow_duplicates),
                source,
                key,
                len(prepared),
                now,
            ),
        )
        batch_id = int(cursor.lastrowid or 0)
        last = db.execute("SELECT COALESCE(MAX(id), 0) FROM leads").fetchone()[0]
        first_id = last + 1
        common = (
            batch_id,
            profile,
            target.template_id,
            target.campaign_id,
            target.allocation_id,
            int(allow_duplicates),
        )
        db.executemany(
            "INSERT INTO leads (id, batch_id, profile, template_id, campaign_id, "
            "allocation_id, allow_duplicates, row_no, fields, external_id, "
            "external_id_generated, state, next_attempt_at, created_at, updated_at, content_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
            (
                (first_id + i, *common, row, body, ext, gen, now, now, now, keys[i])
                for i, (row, body, ext, gen, _values) in enumerate(prepared)
            ),
        )
        db.executemany(
            "INSERT INTO lead_phones (phone, lead_id) VALUES (?, ?)",
            ((phone, first_id + i) for phone, i in phones),
        )
        self._index(db, [(first_id + i, p[4], p[1], p[2]) for i, p in enumerate(prepared)])
        if prepared:  # every new lead is queued (state changes keep the counts by trigger)
            db.execute(
                "INSERT INTO lead_counts (batch_id, state, profile, n) VALUES (?, 'queued', ?, ?) "
                "ON CONFLICT (batch_id, state) DO UPDATE SET n = n + excluded.n",
                (batch_id, profile, len(prepared)),
            )
        last_id = first_id + len(prepared) - 1 if prepared else None
        db.execute(
            "UPDATE batches SET first_lead_id = ?, last_lead_id = ? WHERE id = ?",
            (first_id if prepared else None, last_id, batch_id),
        )
        return BatchInfo(
            id=batch_id,
            profile=profile,
            target=target,
            allow_duplicates=allow_duplicates,
            source=source,
            created_at=now,
            total=len(prepared),
            key=key,
            first_lead_id=first_id if prepared else None,
            last_lead_id=last_id,
        )

    def _index(
        self, db: sqlite3.Connection, leads: Sequence[tuple[int, Sequence[str], str, str]]
    ) -> None:
        """The search's index entries of new leads (id, field values, stored fields, external
        id): the word index takes the stored text as ``leads`` holds it."""
        db.executemany(
            "INSERT INTO lead_tails (tail, lead_id) VALUES (?, ?)",
            ((t, lead_id) for lead_id, values, _body, _ext in leads for t in value_tails(values)),
        )
        if self._words:
            db.executemany(
                "INSERT INTO lead_words (rowid, fields, external_id) VALUES (?, ?, ?)",
                ((lead_id, body, ext) for lead_id, _values, body, ext in leads),
            )

    def index_backlog(self, limit: int = 500) -> int:
        """Index up to ``limit`` of the leads queued before the search's indexes (newest first),
        in one short write; returns how many are left (0: every lead is indexed)."""
        with self._write() as db:
            row = db.execute(
                "SELECT rowid, first_id, last_id FROM search_backlog ORDER BY last_id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return 0
            rowid, first, last = row
            start = max(first, last - limit + 1)
            rows = db.execute(
                "SELECT id, fields, external_id FROM leads WHERE id BETWEEN ? AND ?", (start, last)
            ).fetchall()
            self._index(db, [(i, tuple(fields_of(f).values()), f, e) for i, f, e in rows])
            if start > first:
                db.execute(
                    "UPDATE search_backlog SET last_id = ? WHERE rowid = ?", (start - 1, rowid)
                )
            else:
                db.execute("DELETE FROM search_backlog WHERE rowid = ?", (rowid,))
            return self.search_backlog()

    def search_backlog(self) -> int:
        """How many leads the search's indexes have still to take in (``index_backlog``)."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(last_id - first_id + 1), 0) FROM search_backlog"
        ).fetchone()
        return int(row[0])

    def _backlog(self) -> list[tuple[int, int]]:
        return [(a, b) for a, b in self._db.execute("SELECT first_id, last_id FROM search_backlog")]

    # -- what the dispatcher does ------------------------------------------------------------------

    def recover_interrupted(self, profile: str) -> list[int]:
        """Leads left ``sending`` by a process that died: queued again, outcome unknown.

        Call only while holding the profile's lock (``lock_profile``): another live process may
        be sending them.
        """
        now = self._clock()
        with self._write() as db:
            rows = db.execute(
                "UPDATE leads SET state = 'queued', unknown_outcome = 1, next_attempt_at = ?, "
                "updated_at = ? WHERE profile = ? AND state = 'sending' RETURNING id",
                (now, now, profile),
            ).fetchall()
        return sorted(r[0] for r in rows)

    def claim_due(
        self,
        profile: str,
        limit: int,
        now: float | None = None,
        *,
        due_by: float | None = None,
        generated_ids_only: bool = False,
    ) -> list[Lead]:
        """Up to ``limit`` queued leads due by ``now``, oldest due first, marked ``sending``.

        ``due_by`` (default ``now``) takes leads due by then instead: the breaker's probe is the
        next lead in line, whatever its own wait. ``generated_ids_only`` takes only leads whose
        external id we made (a claim ahead of its call: see ``Dispatcher``). The mark is
        committed before this returns, so a crash during the call that follows leaves the lead
        recoverable as "outcome unknown".
        """
        with self._write() as db:
            return self._claim(db, profile, limit, now, due_by, generated_ids_only)

    def _claim(
        self,
        db: sqlite3.Connection,
        profile: str,
        limit: int,
        now: float | None,
        due_by: float | None,
        generated_ids_only: bool,
    ) -> list[Lead]:
        if limit <= 0:
            return []
        now = self._clock() if now is None else now
        due = now if due_by is None else due_by
        only = "AND external_id_generated = 1 " if generated_ids_only else ""
        rows = db.execute(
            "UPDATE leads SET state = 'sending', updated_at = ?, "
            "budget_from = COALESCE(budget_from, ?), "
            "first_attempt_at = COALESCE(first_attempt_at, ?) "
            "WHERE id IN (SELECT id FROM leads WHERE profile = ? AND state = 'queued' "
            f"AND next_attempt_at <= ? {only}ORDER BY next_attempt_at, id LIMIT ?) "
            f"RETURNING {LEAD_COLUMNS}",
            (now, now, now, profile, due, limit),
        ).fetchall()
        leads = [lead_of(r) for r in rows]
        leads.sort(key=lambda lead: (lead.next_attempt_at, lead.id))
        return leads

    def record(self, attempt: Attempt, transition: Transition) -> Lead:
        """Log ``attempt`` and move its lead as ``transition`` says, in one durable commit."""
        with self._write() as db:
            return self._record(db, attempt, transition)

    def write_group(self, writes: Sequence[GroupWrite]) -> list[Lead | list[Lead]]:
        """Several answers (``Record``) and claims (``Claim``) in one durable commit, in order:
        one disk sync for all. A write that fails (a lead that is not there) fails the group,
        which is then written one by one so that only that write fails; a locked file fails
        them all (``sqlite3.OperationalError``)."""
        with self._write() as db:
            return [self._group_write(db, one) for one in writes]

    def _group_write(self, db: sqlite3.Connection, one: GroupWrite) -> Lead | list[Lead]:
        if isinstance(one, Record):
            return self._record(db, one.attempt, one.transition)
        return self._claim(db, one.profile, one.limit, one.now, one.due_by, one.generated_only)

    def write_one(self, one: GroupWrite) -> Lead | list[Lead]:
        """One write of a group, in its own commit."""
        with self._write() as db:
            return self._group_write(db, one)

    @contextlib.contextmanager
    def short_wait(self, seconds: float) -> Iterator[None]:
        """Writes inside wait at most ``seconds`` for another connection's write, then fail
        (``database is locked``), instead of waiting the whole ``busy_timeout``."""
        timeout = int(self._db.execute("PRAGMA busy_timeout").fetchone()[0])
        self._db.execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")
        try:
            yield
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {timeout}")

    def _record(self, db: sqlite3.Connection, attempt: Attempt, transition: Transition) -> Lead:
        now = self._clock()
        t = transition
        db.execute(
            "INSERT INTO attempts (lead_id, started_at, finished_at, outcome, code, message, "
            "latency, http_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                attempt.lead_id,
                attempt.started_at,
                attempt.finished_at,
                attempt.outcome,
                attempt.code,
                redact_text(attempt.message)[:2000],
                attempt.latency,
                attempt.http_status,
            ),
        )
        row = db.execute(
            "UPDATE leads SET state = ?, attempts = attempts + 1, "
            "next_attempt_at = COALESCE(?, next_attempt_at), "
            "unknown_outcome = COALESCE(?, unknown_outcome), last_code = ?, last_message = ?, "
            "sentence = ?, fix = ?, "
            "first_attempt_at = COALESCE(first_attempt_at, ?), last_attempt_at = ?, "
            "budget_from = COALESCE(budget_from, ?), "
            "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, "
            f"updated_at = ? WHERE id = ? RETURNING {LEAD_COLUMNS}",
            (
                t.state.value,
                t.next_attempt_at,
                None if t.unknown_outcome is None else int(t.unknown_outcome),
                t.code,
                redact_text(t.message)[:2000],
                t.sentence,
                t.fix,
                attempt.started_at,
                attempt.finished_at,
                attempt.started_at,
                t.state.value,
                attempt.finished_at,
                now,
                attempt.lead_id,
            ),
        ).fetchone()
        if row is None:
            raise KeyError(attempt.lead_id)
        return lead_of(row)

    def release(
        self, lead_ids: Sequence[int], *, unknown_outcome: bool, now: float | None = None
    ) -> list[Lead]:
        """Leads that were ``sending`` go back to ``queued`` without an answer (shutdown)."""
        now = self._clock() if now is None else now
        found: list[Lead] = []
        with self._write() as db:
            for chunk in chunks(list(lead_ids)):
                marks = ",".join("?" * len(chunk))
                found.extend(
                    lead_of(r)
                    for r in db.execute(
                        "UPDATE leads SET state = 'queued', next_attempt_at = ?, "
                        "unknown_outcome = MAX(unknown_outcome, ?), updated_at = ? "
                        f"WHERE id IN ({marks}) AND state = 'sending' RETURNING {LEAD_COLUMNS}",
                        (now, int(unknown_outcome), now, *chunk),
                    )
                )
        return found

    def expire(self, profile: str, started_before: float, message: str) -> list[Lead]:
        """Queued leads whose retry budget started before ``started_before`` become ``failed``."""
        now = self._clock()
        with self._write() as db:
            rows = db.execute(
                "UPDATE leads SET state = 'failed', sentence = ?, updated_at = ? "
                "WHERE profile = ? AND state = 'queued' AND attempts > 0 "
                f"AND budget_from IS NOT NULL AND budget_from < ? RETURNING {LEAD_COLUMNS}",
                (message, now, profile, started_before),
            ).fetchall()
        return [lead_of(r) for r in rows]

    def data_version(self) -> int:
        """Changes whenever another connection commits to the file (a cheap read: no I/O)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def bring_forward(self, profile: str, tried_since: float, now: float) -> list[Lead]:
        """Queued leads last tried at or after ``tried_since`` and waiting past ``now`` are due
        at ``now`` (the PBX is back: their waits were for the outage, not for them)."""
        with self._write() as db:
            rows = db.execute(
                "UPDATE leads SET next_attempt_at = ?, updated_at = ? "
                "WHERE profile = ? AND state = 'queued' AND next_attempt_at > ? "
                f"AND last_attempt_at >= ? RETURNING {LEAD_COLUMNS}",
                (now, now, profile, now, tried_since),
            ).fetchall()
        return [lead_of(r) for r in rows]

    def earliest_due(self, profile: str) -> float | None:
        """When the next queued lead of ``profile`` is due (None when nothing is queued)."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM leads WHERE profile = ? AND state = 'queued'",
            (profile,),
        ).fetchone()
        return None if row is None else row[0]

    def next_retry_at(self, profile: str, now: float) -> float | None:
        """The earliest due time of a queued lead of ``profile`` that lies after ``now``."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM leads WHERE profile = ? AND state = 'queued' "
            "AND next_attempt_at > ?",
            (profile, now),
        ).fetchone()
        return None if row is None else row[0]

    # -- controls ----------------------------------------------------------------------------------

    def _move(
        self,
        lead_ids: Iterable[int],
        from_states: Iterable[State],
        sets: str,
        params: tuple[Any, ...],
        extra_where: str = "",
    ) -> list[Lead]:
        ids = sorted(set(lead_ids))
        states = [s.value for s in from_states]
        found: list[Lead] = []
        with self._write() as db:
            for chunk in chunks(ids):
                marks = ",".join("?" * len(chunk))
                smarks = ",".join("?" * len(states))
                found.extend(
                    lead_of(r)
                    for r in db.execute(
                        f"UPDATE leads SET {sets} WHERE id IN ({marks}) "
                        f"AND state IN ({smarks}) {extra_where} RETURNING {LEAD_COLUMNS}",
                        (*params, *chunk, *states),
                    )
                )
        return found

    def cancel(self, lead_ids: Iterable[int]) -> list[Lead]:
        """Queued, held or failed leads become ``cancelled`` (never sent again unless retried)."""
        now = self._clock()
        return self._move(
            lead_ids,
            (State.QUEUED, State.HELD, State.FAILED),
            "state = 'cancelled', updated_at = ?",
            (now,),
        )

    def hold(self, lead_ids: Iterable[int]) -> list[Lead]:
        """Queued leads are parked (``held``) until retried."""
        now = self._clock()
        return self._move(lead_ids, (State.QUEUED,), "state = 'held', updated_at = ?", (now,))

    def take_back(self, lead_ids: Iterable[int]) -> list[Lead]:
        """Held, rejected, failed, cancelled or duplicate leads whose fields went back to the
        grid, to be queued again as new leads with the same external ids: ``cancelled`` for
        good, said in their reason, and left alone by ``requeue``. Of each pair only the new
        lead can be sent, so retrying an original never sends a person a second time."""
        now = self._clock()
        return self._move(
            lead_ids,
            (State.HELD, State.REJECTED, State.FAILED, State.CANCELLED, State.DUPLICATE),
            "state = 'cancelled', taken_back = 1, last_message = ?, sentence = ?, fix = '', "
            "updated_at = ?",
            (
                TAKEN_BACK,
                "Taken back to the grid to be queued again as a new lead; this one is never sent.",
                now,
            ),
            _NOT_TAKEN_BACK,
        )

    def requeue(
        self, lead_ids: Iterable[int], *, allow_duplicates: bool | None = None
    ) -> list[Lead]:
        """Failed, rejected, cancelled, held or duplicate leads are queued again, due now, with
        a new budget; not those taken back to the grid (``take_back``).

        The external id stays the same, so a lead that may have landed is never added twice.
        """
        now = self._clock()
        sets = "state = 'queued', next_attempt_at = ?, budget_from = NULL, updated_at = ?"
        params: tuple[Any, ...] = (now, now)
        if allow_duplicates is not None:
            sets += ", allow_duplicates = ?"
            params = (*params, int(allow_duplicates))
        return self._move(
            lead_ids,
            (State.FAILED, State.REJECTED, State.CANCELLED, State.HELD, State.DUPLICATE),
            sets,
            params,
            _NOT_TAKEN_BACK,
        )

    def requeue_duplicates(self, lead_ids: Iterable[int]) -> list[Lead]:
        """Leads rejected as duplicates (105, also those in ``duplicate``) are queued again
        with allow-duplicates."""
        now = self._clock()
        return self._move(
            lead_ids,
            (State.REJECTED, State.DUPLICATE),
            "state = 'queued', allow_duplicates = 1, next_attempt_at = ?, budget_from = NULL, "
            "updated_at = ?",
            (now, now),
            f"AND last_code = {DUPLICATE}",
        )

    # -- queries -----------------------------------------------------------------------------------

    def _where(self, query: LeadQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.profile is not None:
            clauses.append("profile = ?")
            params.append(query.profile)
        if query.batch_id is not None:
            clauses.append("batch_id = ?")
            params.append(query.batch_id)
        if query.states is not None:
            states = sorted(s.value for s in query.states)
            clauses.append(f"state IN ({','.join('?' * len(states))})" if states else "0")
            params.extend(states)
        if query.lead_ids is not None:
            ids = list(query.lead_ids)
            clauses.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
            params.extend(ids)
        needle = query.search.strip()
        if needle:
            like, like_params = _like(needle)
            typed = needle_tail(needle)
            if typed is None:
                clauses.append(like)
                params.extend(like_params)
            else:  # the phone rule: from the index, and on the leads not indexed yet
                tails, tail_params = _tails(typed)
                either = [like, f"id IN (SELECT lead_id FROM lead_tails WHERE {tails})"]
                params.extend([*like_params, *tail_params])
                backlog = self._backlog()
                if backlog:
                    ranges = " OR ".join("id BETWEEN ? AND ?" for _ in backlog)
                    either.append(f"(({ranges}) AND {PHONE_SQL})")
                    params.extend([*(i for r in backlog for i in r), *phone_sql_params(typed)])
                clauses.append("(" + " OR ".join(either) + ")")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def first_ids(
        self, query: LeadQuery, *, limit: int = FIRST_RESULTS, scan_for: float = FIRST_SCAN_S
    ) -> array[int]:
        """A search's first results, in a few ms at a million: a part of what ``lead_ids``
        finds, up to ``limit``, in queue order.

        The leads are read in queue order for ``scan_for`` seconds first: a common text fills
        the limit at once, and a small queue is read whole. Then the indexes: the phone rule,
        and the leads with a word starting with each word typed (checked with the scan's
        rule). What only the scan finds then is a part of a word or of a message, and the
        leads not indexed yet (``index_backlog``)."""
        needle = query.search.strip()
        where, params = self._where(dataclasses.replace(query, search=""))
        glue = " AND " if where else " WHERE "
        like, like_params = _like(needle)
        every, every_params = self._where(query)
        deadline = time.perf_counter() + scan_for
        self._db.set_progress_handler(lambda: int(time.perf_counter() > deadline), 1000)
        try:
            if scan_for > 0:
                rows = self._db.execute(
                    f"SELECT id FROM leads{every} ORDER BY id LIMIT ?", [*every_params, limit]
                )
                return array("q", (r[0] for r in rows))
        except sqlite3.OperationalError:
            pass  # a rare text in many leads: the indexes find it
        finally:
            self._db.set_progress_handler(None, 0)
        found: set[int] = set()
        typed = needle_tail(needle)
        if typed is not None:
            tails, tail_params = _tails(typed)
            found.update(
                r[0]
                for r in self._db.execute(
                    "SELECT l.id FROM (SELECT DISTINCT lead_id AS r FROM lead_tails "
                    f"WHERE {tails}) CROSS JOIN leads l ON l.id = r{where} LIMIT ?",
                    [*tail_params, *params, limit],
                )
            )
        words = words_query(needle) if self._words else None
        if typed is not None and " AND " in (words or ""):
            words = None  # a number typed with spaces: its pieces are no words to look up
        if words is not None and len(found) < limit:
            try:
                found.update(
                    r[0]
                    for r in self._db.execute(
                        "SELECT l.id FROM (SELECT rowid AS r FROM lead_words WHERE lead_words "
                        f"MATCH ?) CROSS JOIN leads l ON l.id = r{where}{glue}{like} LIMIT ?",
                        [words, *params, *like_params, limit],
                    )
                )
            except sqlite3.OperationalError as exc:  # a word FTS5 will not take: the scan finds it
                log.info("The word index could not look up %r: %s", needle, exc)
        return array("q", sorted(found)[:limit])

    def leads(
        self, query: LeadQuery = EVERY_LEAD, *, offset: int = 0, limit: int | None = None
    ) -> list[Lead]:
        """Leads matching ``query`` in queue order (by id); a page when ``limit`` is given."""
        where, params = self._where(query)
        sql = f"SELECT {LEAD_COLUMNS} FROM leads{where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [lead_of(r) for r in self._db.execute(sql, params)]

    def iter_leads(self, query: LeadQuery = EVERY_LEAD, *, page: int = 2000) -> Iterator[Lead]:
        """All leads matching ``query``, read page by page (for exports)."""
        after = 0
        where, params = self._where(query)
        glue = " AND " if where else " WHERE "
        while True:
            rows = self._db.execute(
                f"SELECT {LEAD_COLUMNS} FROM leads{where}{glue}id > ? ORDER BY id LIMIT ?",
                [*params, after, page],
            ).fetchall()
            if not rows:
                return
            for r in rows:
                yield lead_of(r)
            after = rows[-1][0]

    def count(self, query: LeadQuery = EVERY_LEAD) -> int:
        """How many leads match: from the per-batch counts unless a search or ids are given."""
        if not query.search.strip() and query.lead_ids is None:
            where, params = self._where(LeadQuery(query.profile, query.batch_id, query.states))
            row = self._db.execute(f"SELECT SUM(n) FROM lead_counts{where}", params).fetchone()
            return int(row[0] or 0)
        where, params = self._where(query)
        return int(self._db.execute(f"SELECT COUNT(*) FROM leads{where}", params).fetchone()[0])

    def lead_ids(
        self,
        query: LeadQuery = EVERY_LEAD,
        *,
        after: int = 0,
        stop: Callable[[], bool] | None = None,
    ) -> array[int]:
        """The ids of the leads ``query`` selects, in queue order (those above ``after``).

        Eight bytes a lead (a million: 8 MB, about 0.3 s): the queue view's rows are these, and
        it reads the leads of the few hundred rows it shows. Call it off the UI thread. A search
        reads every lead (about a second at a million); ``stop`` is asked as it goes, and once
        it says True the search ends early with ``SearchStopped``."""
        if not query.search.strip() and query.lead_ids is None and query.profile is not None:
            if self._db.in_transaction:
                return self._lead_ids_by_batch(query, after)
            # Its reads in one snapshot: a batch committed between them cannot list wrong ids.
            self._db.execute("BEGIN DEFERRED")
            try:
                return self._lead_ids_by_batch(query, after)
            finally:
                self._db.execute("COMMIT")
        where, params = self._where(query)
        if after:
            where += (" AND " if where else " WHERE ") + "id > ?"
            params.append(after)
        found: array[int] = array("q")
        stopped: list[bool] = []
        if stop is not None:

            def wanted() -> int:
                stopped.append(stop())
                return int(stopped[-1])

            self._db.set_progress_handler(wanted, _STOP_STEPS)
        try:
            cursor = self._db.execute(f"SELECT id FROM leads{where} ORDER BY id", params)
            while rows := cursor.fetchmany(20000):
                found.extend(r[0] for r in rows)
        except sqlite3.OperationalError as exc:
            if stopped and stopped[-1]:
                raise SearchStopped from exc
            raise
        finally:
            if stop is not None:
                self._db.set_progress_handler(None, 0)
        return found

    def sort_keys(
        self, query: LeadQuery, order: Order, *, after: int = 0
    ) -> tuple[array[int], array[int]]:
        """The sort keys (``order.sort_key``) of the leads ``query`` selects (those above
        ``after``), twice: in ``order`` (``ORDER BY`` key), and in queue order (by id: the queue
        view finds a lead's row from its id with these). Both in one snapshot.

        Eight bytes a lead each; SQLite sorts in a temporary B-tree (no index is kept for it:
        every index costs each lead queued), 1.3 to 1.5 s for both reads at a million leads.
        Call it off the UI thread. A search reads every lead."""
        where, params = self._where(query)
        if after:
            where += (" AND " if where else " WHERE ") + "id > ?"
            params.append(after)
        key = sql_key(order)

        def read(sql: str) -> array[int]:
            found: array[int] = array("q")
            cursor = self._db.execute(sql, params)
            while rows := cursor.fetchmany(20000):
                found.extend(r[0] for r in rows)
            return found

        outer = not self._db.in_transaction
        if outer:
            self._db.execute("BEGIN DEFERRED")
        try:
            ordered = read(f"SELECT {key} AS k FROM leads{where} ORDER BY k")
            by_id = read(f"SELECT {key} FROM leads{where} ORDER BY id")
        finally:
            if outer:
                self._db.execute("COMMIT")
        return ordered, by_id

    def _lead_ids_by_batch(self, query: LeadQuery, after: int) -> array[int]:
        """``lead_ids`` without a search, from the batches: a batch's leads have consecutive
        ids (one transaction), so a batch all of whose leads match is a range of ids, and only
        a batch partly in the states asked for is read lead by lead (by its index)."""
        states = None if query.states is None else {s.value for s in query.states}
        where = "profile = ? AND last_lead_id > ?"
        params: list[Any] = [query.profile, after]
        if query.batch_id is not None:
            where += " AND id = ?"
            params.append(query.batch_id)
        per_batch: dict[int, dict[str, int]] = {}
        for batch_id, state, n in self._db.execute(
            "SELECT batch_id, state, n FROM lead_counts WHERE batch_id IN "
            f"(SELECT id FROM batches WHERE {where}) AND n > 0",
            params,
        ):
            per_batch.setdefault(batch_id, {})[state] = n
        found: array[int] = array("q")
        for batch_id, first, last in self._db.execute(
            f"SELECT id, first_lead_id, last_lead_id FROM batches WHERE {where} "
            "AND first_lead_id IS NOT NULL ORDER BY first_lead_id",
            params,
        ).fetchall():
            counts = per_batch.get(batch_id, {})
            wanted = sum(n for s, n in counts.items() if states is None or s in states)
            if not wanted:
                continue
            if wanted == sum(counts.values()) == last - first + 1 and first > after:
                found.extend(range(first, last + 1))
                continue
            marks = "" if states is None else f" AND state IN ({','.join('?' * len(states))})"
            rows = self._db.execute(
                f"SELECT id FROM leads WHERE batch_id = ? AND id > ?{marks} ORDER BY id",
                [batch_id, after, *sorted(states or ())],
            ).fetchall()
            found.extend(r[0] for r in rows)
        return found

    def field_names(self, query: LeadQuery = EVERY_LEAD) -> list[str]:
        """The field names of the leads ``query`` selects, in order of first appearance (read
        by SQLite from the stored JSON: no lead is decoded in Python)."""
        where, params = self._where(query)
        return [
            r[0]
            for r in self._db.execute(
                "SELECT j.key FROM (SELECT id AS lead_id, fields FROM leads"
                f"{where}) AS l, json_each(l.fields) AS j "
                "GROUP BY j.key ORDER BY MIN(l.lead_id), MIN(j.id)",
                params,
            )
        ]

    def last_lead_id(self, profile: str | None = None) -> int:
        """The newest lead's id (0 without leads)."""
        where, params = self._where(LeadQuery(profile=profile))
        return int(self._db.execute(f"SELECT MAX(id) FROM leads{where}", params).fetchone()[0] or 0)

    def leads_by_id(self, lead_ids: Sequence[int]) -> dict[int, Lead]:
        """The leads with these ids (a page of the queue view), by id."""
        found: dict[int, Lead] = {}
        for chunk in chunks(list(lead_ids)):
            marks = ",".join("?" * len(chunk))
            for r in self._db.execute(
                f"SELECT {LEAD_COLUMNS} FROM leads WHERE id IN ({marks})", tuple(chunk)
            ):
                found[r[0]] = lead_of(r)
        return found

    def get(self, lead_id: int) -> Lead | None:
        row = self._db.execute(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,)
        ).fetchone()
        return None if row is None else lead_of(row)

    def counts(self, profile: str | None = None, batch_id: int | None = None) -> Counts:
        """Leads per state, for a profile, a batch, or everything."""
        where, params = self._where(LeadQuery(profile=profile, batch_id=batch_id))
        result = Counts()
        for state, n in self._db.execute(
            f"SELECT state, SUM(n) FROM lead_counts{where} GROUP BY state", params
        ):
            result.by_state[State(state)] = n
        return result

    def batch_counts(self, batch_ids: Iterable[int]) -> dict[int, Counts]:
        """Leads per state of each of these batches, in one query."""
        wanted = list(batch_ids)
        result = {batch_id: Counts() for batch_id in wanted}
        for chunk in chunks(wanted):
            marks = ",".join("?" * len(chunk))
            for batch_id, state, n in self._db.execute(
                f"SELECT batch_id, state, n FROM lead_counts WHERE batch_id IN ({marks})",
                tuple(chunk),
            ):
                result[batch_id].by_state[State(state)] = n
        return result

    def open_batch_ids(self, profile: str) -> list[int]:
        """The batches of ``profile`` with leads queued, sending or held, newest first."""
        return [
            r[0]
            for r in self._db.execute(
                "SELECT DISTINCT batch_id FROM lead_counts WHERE profile = ? "
                "AND state IN ('queued', 'sending', 'held') AND n > 0 ORDER BY batch_id DESC",
                (profile,),
            )
        ]

    def attempts(self, lead_id: int) -> list[Attempt]:
        """The attempt log of one lead, oldest first."""
        return [
            Attempt(lead_id, *r)
            for r in self._db.execute(
                "SELECT started_at, finished_at, outcome, code, message, latency, http_status "
                "FROM attempts WHERE lead_id = ? ORDER BY id",
                (lead_id,),
            )
        ]

    def batch(self, batch_id: int) -> BatchInfo | None:
        row = self._db.execute(
            f"SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()
        return None if row is None else batch_of(row)

    def batches(self, profile: str | None = None, *, limit: int = -1) -> list[BatchInfo]:
        """Batches, newest first (the newest ``limit`` only, when it is given)."""
        where, params = ("", ()) if profile is None else (" WHERE profile = ?", (profile,))
        rows = self._db.execute(
            f"SELECT {BATCH_COLUMNS} FROM batches{where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [batch_of(r) for r in rows]

    def find_open_batch(self, profile: str, key: str) -> BatchInfo | None:
        """The newest batch with ``key`` that still has leads queued, sending or held."""
        found = self._batch_by_key(self._db, profile, key, Target(0, 0, 0), False)
        return None if found is None else found[0]

    def recent_phones(
        self, e164s: Iterable[str], days: int = 30, *, now: float | None = None
    ) -> dict[str, str]:
        """Numbers among ``e164s`` delivered from this desk in the last ``days`` days.

        Maps each to a short description such as "delivered 3 days ago".
        """
        now = self._clock() if now is None else now
        since = now - days * 86400
        wanted = list({p for p in e164s if p})  # unsorted: sorting 100,000 holds the GIL
        found: dict[str, str] = {}
        for chunk in chunks(wanted):  # type: ignore[arg-type]
            marks = ",".join("?" * len(chunk))
            for phone, when in self._db.execute(
                "SELECT p.phone, MAX(l.delivered_at) FROM lead_phones p "
                "JOIN leads l ON l.id = p.lead_id "
                f"WHERE p.phone IN ({marks}) AND l.state = 'delivered' AND l.delivered_at >= ? "
                "GROUP BY p.phone",
                (*chunk, since),
            ):
                found[phone] = ago(now - when)
        return found

    def queued_phones(self, e164s: Iterable[str]) -> dict[str, int]:
        """Numbers among ``e164s`` that belong to a lead still queued, sending or held."""
        wanted = list({p for p in e164s if p})  # unsorted: sorting 100,000 holds the GIL
        found: dict[str, int] = {}
        for chunk in chunks(wanted):  # type: ignore[arg-type]
            marks = ",".join("?" * len(chunk))
            for phone, lead_id in self._db.execute(
                "SELECT p.phone, MIN(l.id) FROM lead_phones p JOIN leads l ON l.id = p.lead_id "
                f"WHERE p.phone IN ({marks}) AND l.state IN ('queued', 'sending', 'held') "
                "GROUP BY p.phone",
                tuple(chunk),
            ):
                found[phone] = lead_id
        return found

    # -- one sender per profile ------------------------------------------------------------------

    def lock_profile(self, profile: str) -> ProfileLock:
        """An OS lock that only one process at a time holds for ``profile``'s queue."""
        digest = hashlib.sha1(profile.encode("utf-8")).hexdigest()[:12]
        return ProfileLock(self.path.with_name(f"{self.path.name}.{digest}.lock"), profile)


class SearchStopped(Exception):
    """A search's scan was stopped early: its answer is no longer wanted."""


def _like(needle: str) -> tuple[str, list[str]]:
    """The search's text rule: ``needle`` anywhere in a lead's fields, id or messages."""
    term = "%" + re.sub(r"([%_\\])", r"\\\1", needle) + "%"
    clause = (
        "(external_id LIKE ? ESCAPE '\\' OR fields LIKE ? ESCAPE '\\' "
        "OR last_message LIKE ? ESCAPE '\\' OR sentence LIKE ? ESCAPE '\\')"
    )
    return clause, [term] * 4


def _tails(typed: str) -> tuple[str, list[str]]:
    """The phone rule on ``lead_tails``: a tail starting with the typed digits (reversed), or one
    they start with."""
    prefixes = tail_prefixes(typed)
    clause = "(tail >= ? AND tail < ?)"
    if prefixes:
        clause = f"({clause[1:-1]} OR tail IN ({','.join('?' * len(prefixes))}))"
    return clause, [typed, typed + AFTER_DIGITS, *prefixes]


def set_aside(path: str | os.PathLike[str], *, now: Callable[[], float] = time.time) -> list[Path]:
    """Renames a damaged queue file (and its -wal and -shm files) to ``<name>.damaged-<time>``,
    so the next open starts an empty queue; the renamed files, for support to recover.

    All or nothing: when one of them cannot be renamed, those renamed already are put back (a
    -wal left beside a new, empty file could be replayed into it) and the OSError is raised,
    naming the file that could not be moved."""
    queue = Path(path)
    stamp = int(now())
    moved: list[tuple[Path, Path]] = []
    try:
        for suffix in ("", "-wal", "-shm"):
            part = queue.with_name(queue.name + suffix)
            if part.exists():
                moved.append((part, part.rename(part.with_name(f"{part.name}.damaged-{stamp}"))))
    except OSError as exc:
        for part, renamed in reversed(moved):
            try:
                renamed.rename(part)
            except OSError:
                log.exception("could not put %s back as %s", renamed, part)
        if exc.filename is None:
            exc.filename = str(queue)
        raise
    return [renamed for _, renamed in moved]
