"""The queue as a Qt table model: a window onto the outbox.

The model holds the sort keys of the leads its query selects (``core.delivery.order``; in queue
order they are the ids: eight bytes a lead, read off the UI thread) and reads the leads of the
rows a view shows, a page at a time, into a small cache. The state filter, the search and the
order are SQL; rows that enter or leave them as events arrive are inserted or removed in place,
and a row whose key changes (its state, sorted by status) moves to its new place. In queue order
a search shows its first results from the outbox's indexes, then the scan of every lead adds the
rest in place (``searching`` says while it runs); sorted by status or by last change, a search
is one sorted query over every lead (the rows shown before stay until it ends)."""

from __future__ import annotations

import heapq
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush

from noojee_desk.core.delivery.order import ID_MASK, Order, sort_key
from noojee_desk.core.delivery.records import Lead, LeadQuery, State
from noojee_desk.core.delivery.search import phone_matches
from noojee_desk.core.leads.layouts import is_phone_name
from noojee_desk.ui.itemdata import AnyIndex, fill_roles
from noojee_desk.ui.theme import qcolor

COLUMNS = ("#", "Batch", "Status", "Lead", "Phone", "Campaign", "Tries", "Details", "Updated")
(
    COL_ID,
    COL_BATCH,
    COL_STATUS,
    COL_LEAD,
    COL_PHONE,
    COL_TARGET,
    COL_TRIES,
    COL_DETAILS,
    COL_UPDATED,
) = range(9)
#: What a click on a sortable column's header does.
HEADER_TIPS = {
    COL_ID: "The lead's row in its spreadsheet or paste (click: queue order; again: newest first)",
    COL_STATUS: "Click: what needs a person first (failed, rejected, duplicate, on hold), then "
    "sending, queued, delivered, cancelled; again: the other way round",
    COL_UPDATED: "Click: the latest changes first; again: the oldest first",
}
#: Above this many selected rows a live change's lead is taken out and put in at its new place
#: instead of moved (see ``QueueModel._move``): it loses its own selection, the window no time.
MOVE_SELECTION_MAX = 500
PAGE = 100  # leads read at a time around the rows a view shows (a screen is some 30)
CACHE = 3000  # leads kept; past that the cache starts again from the page asked for

STATE_TONES = {
    State.QUEUED: "info",
    State.SENDING: "info",
    State.DELIVERED: "ok",
    State.REJECTED: "error",
    State.FAILED: "error",
    State.HELD: "warning",
    State.CANCELLED: "muted",
    State.DUPLICATE: "warning",
}
LeadRole = Qt.ItemDataRole.UserRole + 1
StateRole = Qt.ItemDataRole.UserRole + 2


def clock_text(when: float | None) -> str:
    """'10:42' today, '26 Nov 10:42' on other days."""
    if not when:
        return ""
    try:
        local = time.localtime(when)
    except (OverflowError, OSError, ValueError):  # a time no clock can show (inf, 1e300)
        return ""
    if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d"):
        return time.strftime("%H:%M", local)
    return time.strftime("%d %b %H:%M", local)


def status_text(lead: Lead, paused_reason: str = "") -> str:
    """The state in a sales person's words."""
    if lead.state is State.QUEUED:
        if paused_reason:
            return "Needs attention"
        if lead.attempts and lead.next_attempt_at > time.time() + 1:
            when = clock_text(lead.next_attempt_at)
            return f"Retrying at {when}" if when else "Retrying later"
        return "Queued" if not lead.attempts else "Retrying"
    return {
        State.SENDING: "Sending…",
        State.DELIVERED: "Delivered",
        State.REJECTED: "Rejected",
        State.FAILED: "Failed (gave up)",
        State.HELD: "On hold",
        State.CANCELLED: "Cancelled",
        State.DUPLICATE: "Duplicate (maybe its own earlier try)",
    }[lead.state]


def details_text(lead: Lead, paused_reason: str = "") -> str:
    if lead.state is State.QUEUED and paused_reason:
        return paused_reason
    if lead.state is State.DELIVERED:
        return f"Delivered at {clock_text(lead.delivered_at)}" + (
            f" (id {lead.external_id})" if lead.external_id_generated else ""
        )
    parts = [p for p in (lead.sentence, lead.fix) if p]
    if not parts and lead.last_message:
        parts = [lead.last_message]
    if lead.last_code not in (None, 0):
        parts.append(f"[code {lead.last_code}]")
    return " ".join(parts)


def lead_summary(lead: Lead) -> str:
    names = [v for k, v in lead.fields.items() if v and not is_phone_name(k)]
    return " · ".join(names[:3])


def lead_phone(lead: Lead) -> str:
    return next((v for k, v in lead.fields.items() if v and is_phone_name(k)), "")


#: Reads the ids a query selects, above an id (slow at a million: run off the UI thread).
IdFinder = Callable[[LeadQuery, int], "array[int]"]
#: Reads the leads with these ids (one page: fast, on the UI thread).
PageReader = Callable[[Sequence[int]], Mapping[int, Lead]]
#: Reads the highest lead id in the outbox (of a profile), the top a query can see.
TopReader = Callable[[str | None], int]
#: Reads a search's first results from the outbox's indexes (fast; off the UI thread).
FirstFinder = Callable[[LeadQuery], "array[int]"]
#: Reads every lead a search finds; stops early (None) once the callable it is given says True.
ScanFinder = Callable[[LeadQuery, Callable[[], bool]], "array[int] | None"]
#: Reads the sort keys of the leads a query selects (above an id) in an order other than by id:
#: in that order, and by id (``Outbox.sort_keys``; slow at a million: off the UI thread).
KeyFinder = Callable[[LeadQuery, Order, int], "tuple[array[int], array[int]]"]
#: The columns the rows can be sorted by, and their orders.
SORT_ORDERS: dict[int, Order] = {COL_ID: "id", COL_STATUS: "status", COL_UPDATED: "updated"}
#: Above this many places to insert the scan's rows at (or rows to insert at more than one
#: place), they come in one layout change.
_INSERT_RUNS = 50
_INSERT_ROWS = 100_000
#: Up to this many ids are put in or taken out of a scan's answer one by one.
_FEW = 100
#: Runs a job somewhere (a worker thread) and hands its result to a callback on the UI thread.
#: It may return something to wait on (an asyncio task) until the callback has run.
Runner = Callable[[Callable[[], Any], Callable[[Any], None]], Any]


def _contains(ids: array[int], lead_id: int) -> bool:
    at = bisect_left(ids, lead_id)
    return at < len(ids) and ids[at] == lead_id


def _id_of(key: int) -> int:
    return key & ID_MASK


def _lead_id(lead: Lead) -> int:
    return lead.id


def run_here(job: Callable[[], Any], done: Callable[[Any], None]) -> None:
    done(job())


#: SQLite's LIKE folds the case of ASCII letters only ("MÜLLER" does not find "Müller").
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def like_fold(text: str) -> str:
    """Text as SQLite's LIKE compares it: ASCII letters in lower case, every other letter as is."""
    return text.translate(_ASCII_LOWER)


def haystack(lead: Lead) -> str:
    """What the search looks in, as the SQL search does: fields, external id, messages (folded
    as LIKE folds them)."""
    return like_fold(" ".join(
        [*lead.fields.keys(), *lead.fields.values(), lead.external_id, lead.sentence,
         lead.last_message]
    ))  # fmt: skip


def matches(needle: str, lead: Lead) -> bool:
    """The outbox's search on one lead: ``needle`` (as typed) anywhere in it, LIKE's way, or a
    phone number typed that one of its phone-like values ends with (``core.delivery.search``)."""
    needle = needle.strip()
    return (
        not needle
        or like_fold(needle) in haystack(lead)
        or phone_matches(needle, lead.fields.values())
    )


class QueueModel(QAbstractTableModel):
    """One row per lead the query selects, in queue order (by id; newest first on request), or
    by status or last change (``sort``; then by id).

    ``attach`` connects it to an outbox (its id finder, its page reader and a runner for the slow
    queries); ``reset`` alone shows a fixed list of leads (filtered and sorted in memory).

    The rows are ``_keys``, ascending sort keys (``core.delivery.order``; in queue order the
    ids), and in another order ``_by_id`` holds the same keys in id order, so that a lead's row
    is found from its id (a bisect each) when a live change moves it."""

    #: The rows of a new query are shown (after a filter, a search or a profile change).
    loaded = Signal()
    #: True while a search's scan of every lead runs after its first results; False at its end.
    searching = Signal(bool)
    #: The order asked for went back to the order the rows are shown in (its query failed).
    order_changed = Signal()

    def __init__(
        self,
        target_names: Callable[[Lead], str] | None = None,
        batch_names: Callable[[int], str] | None = None,
    ) -> None:
        super().__init__()
        self._keys: array[int] = array("q")  # the rows' sort keys, ascending
        self._by_id: array[int] | None = None  # the same keys by id (None in queue order)
        self._order: Order = "id"  # the order of the rows shown
        self._wanted: Order = "id"  # the order asked for (its query may still run)
        self._wanted_descending = False
        self._keyed: KeyFinder | None = None
        self._relayout = False  # the query under way brings the same leads in another order
        self._cache: dict[int, Lead] = {}
        self._all: dict[int, Lead] | None = {}  # reset(): every lead, no outbox behind
        self._finder: IdFinder | None = None
        self._pages: PageReader | None = None
        self._runner: Runner = run_here
        self._target_names = target_names or (
            lambda lead: f"#{lead.target.campaign_id} / #{lead.target.allocation_id}"
        )
        self._batch_names = batch_names or (lambda batch_id: f"Batch {batch_id}")
        self.paused_reason = ""
        self.profile: str | None = None
        self._states: frozenset[State] | None = None
        self._needle = ""
        self.descending = False
        self._generation = 0
        self._loading = False
        self._late: list[Lead] = []  # changes that arrive while a query runs
        self._seen = 0  # the highest id the last query could see
        self._top: TopReader | None = None
        self._fetching = False  # a fetch_new runs (one at a time)
        self._fetch_wanted = False  # fetch_new was asked while a query or a fetch ran
        self._first: FirstFinder | None = None
        self._scan: ScanFinder | None = None
        self._scanning = False  # a search's first results are shown, its scan runs
        self._touched: set[int] = set()  # leads a live change decided on while the scan ran
        #: How many rows the view has selected (at most: ranges may overlap); its view sets it.
        self.selection_size: Callable[[], int] = lambda: 0

    def attach(
        self,
        finder: IdFinder,
        pages: PageReader,
        runner: Runner = run_here,
        top: TopReader | None = None,
        first: FirstFinder | None = None,
        scan: ScanFinder | None = None,
        keyed: KeyFinder | None = None,
    ) -> None:
        """``top`` reads the outbox's highest lead id as a query starts (without it: the
        highest id the query finds), so that fetch_new looks only above it. With ``first`` and
        ``scan``, a search shows ``first``'s rows, then adds what ``scan`` finds. With
        ``keyed``, the rows can be sorted by status and by last change."""
        self._finder, self._pages, self._runner, self._top = finder, pages, runner, top
        self._first, self._scan, self._keyed = first, scan, keyed
        self._all = None

    # -- the query --------------------------------------------------------------------------

    @property
    def states(self) -> frozenset[State] | None:
        return self._states

    @property
    def search(self) -> str:
        return self._needle

    def query(self) -> LeadQuery:
        return LeadQuery(profile=self.profile, states=self._states, search=self._needle)

    def set_profile(self, profile: str | None) -> Any:
        self.profile = profile
        return self.refresh()

    def set_states(self, states: frozenset[State] | None) -> Any:
        self._states = states
        return self.refresh()

    def set_search(self, text: str) -> Any:
        self._needle = text.strip()  # as typed: the outbox's LIKE folds ASCII letters only
        return self.refresh()

    @property
    def loading(self) -> bool:
        return self._loading

    @property
    def scanning(self) -> bool:
        """Whether a search's first results are shown and the rest is still being looked for."""
        return self._scanning

    def _end_scan(self) -> None:
        if self._scanning:
            self._scanning = False
            self._touched = set()
            self.searching.emit(False)

    @property
    def generation(self) -> int:
        """Which query is the latest (a runner tells ``query_failed`` which one failed)."""
        return self._generation

    def refresh(self, *, relayout: bool = False) -> Any:
        """Run the query again (off the UI thread when attached) and show its rows; returns
        what the runner gives to wait on. ``relayout``: the same leads in another order (or a
        few more), so the rows come in one layout change and the selection stays on its leads
        (otherwise they come as a new model)."""
        self._generation += 1
        generation = self._generation
        order = self._wanted
        # A query for other leads (a filter, a search) is under way: its rows come as a new model.
        relayout = relayout and not (self._loading and not self._relayout)
        self._relayout = relayout
        if self._all is not None:
            chosen = [lead for lead in self._all.values() if self._accepts(lead)]
            keys = array("q", sorted(sort_key(lead, order) for lead in chosen))
            by_id = None
            if order != "id":
                by_id = array("q", (sort_key(lead, order) for lead in sorted(chosen, key=_lead_id)))
            self._arrived(generation, keys, by_id, max(self._all, default=0), relayout)
            return None
        finder, query, top, keyed = self._finder, self.query(), self._top, self._keyed
        assert finder is not None
        self._end_scan()
        self._loading = True
        self._fetch_wanted = False  # the query sees every lead committed before it runs
        first = self._first if self._needle and self._scan is not None and order == "id" else None

        def job() -> tuple[array[int], array[int] | None, int]:
            # The top first: a lead committed between the two reads is above it, so the next
            # fetch_new looks for it (and finds it shown already, or shows it).
            seen = top(query.profile) if top is not None else 0
            if order != "id":
                assert keyed is not None
                keys, by_id = keyed(query, order, 0)
                return keys, by_id, max(seen, _id_of(by_id[-1]) if by_id else 0)
            found = finder(query, 0) if first is None else first(query)
            return found, None, max(seen, found[-1] if found else 0)

        def arrived(result: tuple[array[int], array[int] | None, int]) -> None:
            self._arrived(generation, *result, relayout)
            if first is not None and generation == self._generation:
                self._start_scan(generation, query)

        return self._runner(job, arrived)

    def _start_scan(self, generation: int, query: LeadQuery) -> None:
        """After a search's first results: every lead it finds, added in place when the scan
        ends (a newer query makes the scan stop early)."""
        scan = self._scan
        assert scan is not None
        self._scanning = True
        self._touched = set()
        self.searching.emit(True)

        def stale() -> bool:
            return generation != self._generation

        self._runner(lambda: scan(query, stale), lambda ids: self._scanned(generation, ids))

    def _scanned(self, generation: int, ids: array[int] | None) -> None:
        if generation != self._generation or ids is None:
            return
        touched = self._touched
        self._end_scan()
        self._merge(ids, touched)

    def _merge(self, found: array[int], touched: set[int]) -> None:
        """The scan's ids (``found``, in queue order) shown with the rows shown now: one place to
        add rows at (the scan's rows after the first results) or a few are rows inserted there,
        so the view keeps its place and selection; many are one layout change. Its work on the
        UI thread is a bisect per row shown, not per row found (a million found)."""
        shown = self._keys
        gone = [i for i in touched if not _contains(shown, i) and _contains(found, i)]
        # A few ids in or out are a memmove each; many, one pass in Python over what was found.
        if len(gone) > _FEW:  # a live change took these out after the scan read them
            drop = set(gone)
            found = array("q", (i for i in found if i not in drop))
        for lead_id in gone if len(gone) <= _FEW else ():
            del found[bisect_left(found, lead_id)]
        missing = [i for i in shown if not _contains(found, i)]  # shown since the scan read
        if len(missing) > _FEW:
            found = array("q", heapq.merge(found, missing))
        for lead_id in missing if len(missing) <= _FEW else ():
            found.insert(bisect_left(found, lead_id), lead_id)
        final = found
        if len(final) == len(shown):
            return
        places = [bisect_left(final, i) - n for n, i in enumerate(shown)]  # added rows before
        self._insert_final(final, places)

    def _insert_final(self, final: array[int], places: list[int]) -> None:
        """``final`` shown instead of the rows shown now (each row shown is in it, ``places``
        giving how many of the added rows go before it)."""
        shown = self._keys
        added = len(final) - len(shown)
        # The added rows in runs: (position in shown to insert at, how many).
        runs: list[tuple[int, int]] = []
        before = 0
        for position, count in enumerate(places):
            if count > before:
                runs.append((position, count - before))
            before = count
        if added > before:
            runs.append((len(shown), added - before))
        if len(runs) == 1:
            at, count = runs[0]
            row = len(shown) - at if self.descending else at
            self.beginInsertRows(QModelIndex(), row, row + count - 1)
            self._keys = final
            self.endInsertRows()
            return
        if len(runs) <= _INSERT_RUNS and added <= _INSERT_ROWS:
            offset = 0
            for at, count in runs:  # in queue order: the runs before are in place already
                start = at + offset
                row = len(self._keys) - start if self.descending else start
                self.beginInsertRows(QModelIndex(), row, row + count - 1)
                self._keys[start:start] = final[start : start + count]
                self.endInsertRows()
                offset += count
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        kept = [(self.id_at(index.row()), index.column()) for index in old]
        self._keys = final
        self.changePersistentIndexList(
            old, [self.index(self.row_of(lead_id) or 0, column) for lead_id, column in kept]
        )
        self.layoutChanged.emit()

    def _arrived(
        self,
        generation: int,
        keys: array[int],
        by_id: array[int] | None,
        seen: int,
        relayout: bool = False,
    ) -> None:
        if generation != self._generation:
            return
        if relayout:
            self.layoutAboutToBeChanged.emit()
            old = self.persistentIndexList()
            kept = [(self.id_at(index.row()), index.column()) for index in old]
        else:
            self.beginResetModel()
            self._cache.clear()
        self._keys, self._by_id = keys, by_id
        self._order, self.descending = self._wanted, self._wanted_descending
        self._seen = max(seen, self._seen)
        self._loading = False
        if relayout:
            rows = [self.row_of(lead_id) for lead_id, _column in kept]
            self.changePersistentIndexList(
                old,
                [
                    QModelIndex() if row is None else self.index(row, column)
                    for row, (_lead_id, column) in zip(rows, kept, strict=True)
                ],
            )
            self.layoutChanged.emit()
        else:
            self.endResetModel()
        self._replay_late()
        self.loaded.emit()
        self._fetch_if_wanted()

    def query_failed(self, generation: int) -> None:
        """The runner could not run a job of ``generation`` (a storage error, said elsewhere):
        the rows shown stay, the changes that waited for the query are applied, and the next
        fetch_new runs."""
        self._fetching = False
        if generation == self._generation and self._loading:
            self._loading = False
            if (self._wanted, self._wanted_descending) != (self._order, self.descending):
                self._wanted, self._wanted_descending = self._order, self.descending
                self.order_changed.emit()  # the rows stay in the order they are shown in
            self._replay_late()
        if generation == self._generation:
            self._end_scan()

    def _replay_late(self) -> None:
        late, self._late = self._late, []
        if late:
            self.update(late)

    def fetch_new(self) -> Any:
        """Show the leads queued since the last query (by this window or another process).

        Returns what the runner gives to wait on until they are shown (None: nothing to wait;
        asked while a query or another fetch runs, it runs once that is over)."""
        if self._all is not None or self._finder is None:
            return None
        if self._loading or self._fetching:
            self._fetch_wanted = True
            return None
        finder, query, after, generation = self._finder, self.query(), self._seen, self._generation
        top, order, keyed = self._top, self._order, self._keyed
        self._fetching = True

        def job() -> tuple[array[int], int]:
            seen = top(query.profile) if top is not None else 0
            if order != "id":  # their keys, by id
                assert keyed is not None
                found = keyed(query, order, after)[1]
                return found, max(seen, _id_of(found[-1]) if found else 0)
            found = finder(query, after)
            return found, max(seen, found[-1] if found else 0)

        return self._runner(job, lambda result: self._append(generation, *result))

    def _fetch_if_wanted(self) -> None:
        if self._fetch_wanted and not self._loading and not self._fetching:
            self._fetch_wanted = False
            self.fetch_new()

    def _append(self, generation: int, ids: array[int], seen: int) -> None:
        self._fetching = False
        if generation == self._generation and not self._loading:
            self._seen = max(self._seen, seen)
            if self._by_id is not None and len(ids) > _FEW:
                # Many rows at many places: the sorted query again, its rows in one layout
                # change (a row inserted is a memmove of every key after it).
                self.refresh(relayout=True)
            else:
                self._insert_keys(ids if self._by_id is None else sorted(ids))
        self._fetch_if_wanted()

    def _insert_keys(self, keys: Iterable[int]) -> None:
        """Rows for the keys (ascending) of leads not shown yet, each in its place (update()
        may have shown a later one already, so an earlier one is not simply appended)."""
        tail: array[int] = array("q")
        keyed = self._by_id is not None
        for key in keys:
            if keyed and self._find(_id_of(key)) is not None:
                continue  # shown by a live change, where its key is now
            last = self._keys[-1] if self._keys else 0
            if tail or key > last:
                if not tail or key > tail[-1]:
                    tail.append(key)
                continue
            at = bisect_left(self._keys, key)
            if at < len(self._keys) and self._keys[at] == key:
                continue
            row = self._row_of_position(at) + (1 if self.descending else 0)
            self.beginInsertRows(QModelIndex(), row, row)
            self._put(at, key)
            self.endInsertRows()
        if tail:
            count = len(self._keys)
            first = 0 if self.descending else count
            self.beginInsertRows(QModelIndex(), first, first + len(tail) - 1)
            self._keys.extend(tail)
            for key in tail if keyed else ():
                self._put_by_id(key)
            self.endInsertRows()

    def _accepts(self, lead: Lead) -> bool:
        if self.profile is not None and lead.profile != self.profile:
            return False
        if self._states is not None and lead.state not in self._states:
            return False
        return matches(self._needle, lead)

    # -- rows and ids -----------------------------------------------------------------------

    def _position(self, row: int) -> int:
        return len(self._keys) - 1 - row if self.descending else row

    def _row_of_position(self, position: int) -> int:
        return len(self._keys) - 1 - position if self.descending else position

    def id_at(self, row: int) -> int:
        key = self._keys[self._position(row)]
        return key if self._by_id is None else key & ID_MASK

    def row_of(self, lead_id: int) -> int | None:
        at = self._find(lead_id)
        return None if at is None else self._row_of_position(at)

    def _find(self, lead_id: int) -> int | None:
        """The position of a lead's key in ``_keys`` (None: not shown)."""
        if self._by_id is None:
            at = bisect_left(self._keys, lead_id)
            return at if at < len(self._keys) and self._keys[at] == lead_id else None
        by_id = self._by_id
        j = bisect_left(by_id, lead_id, key=_id_of)
        if j == len(by_id) or by_id[j] & ID_MASK != lead_id:
            return None
        return bisect_left(self._keys, by_id[j])

    def _key(self, lead: Lead) -> int:
        return sort_key(lead, self._order)

    def _put(self, at: int, key: int) -> None:
        self._keys.insert(at, key)
        if self._by_id is not None:
            self._put_by_id(key)

    def _put_by_id(self, key: int) -> None:
        assert self._by_id is not None
        self._by_id.insert(bisect_left(self._by_id, key & ID_MASK, key=_id_of), key)

    def _take(self, at: int) -> None:
        key = self._keys.pop(at)
        if self._by_id is not None:
            del self._by_id[bisect_left(self._by_id, key & ID_MASK, key=_id_of)]

    def _move(self, at: int, key: int, keep: bool) -> None:
        """The row at ``at`` to its new key's place: moved, so that the view keeps its
        selection on it, when ``keep``; else taken out and put in again (Qt's selection model
        makes a persistent index of every selected cell for each move: a large selection would
        stall the window at every live change, while rows taken out and put in leave its ranges
        as they are)."""
        assert self._by_id is not None
        keys = self._keys
        place = bisect_left(keys, key)
        to = place - 1 if place > at else place  # its position once moved
        if to == at:
            self._by_id[bisect_left(self._by_id, keys[at] & ID_MASK, key=_id_of)] = key
            keys[at] = key
            return
        if not keep:
            row = self._row_of_position(at)
            self.beginRemoveRows(QModelIndex(), row, row)
            self._take(at)
            self.endRemoveRows()
            at = bisect_left(keys, key)
            row = at if not self.descending else len(keys) - at
            self.beginInsertRows(QModelIndex(), row, row)
            self._put(at, key)
            self.endInsertRows()
            return
        self._by_id[bisect_left(self._by_id, keys[at] & ID_MASK, key=_id_of)] = key
        row, new_row = self._row_of_position(at), self._row_of_position(to)
        self.beginMoveRows(
            QModelIndex(), row, row, QModelIndex(), new_row + 1 if new_row > row else new_row
        )
        del keys[at]
        keys.insert(to, key)
        self.endMoveRows()

    def lead_at(self, row: int) -> Lead:
        lead_id = self.id_at(row)
        lead = self._cache.get(lead_id)
        if lead is None:
            lead = self._read_page(row).get(lead_id)
            if lead is None:
                raise LookupError(f"lead {lead_id} is no longer in the queue")
        return lead

    def _read_page(self, row: int) -> dict[int, Lead]:
        start = max(0, row - PAGE // 2)
        wanted = [self.id_at(r) for r in range(start, min(self.rowCount(), start + PAGE))]
        if self._all is not None:
            return {i: self._all[i] for i in wanted if i in self._all}
        assert self._pages is not None
        found = self._pages([i for i in wanted if i not in self._cache])
        if len(self._cache) + len(found) > CACHE:
            self._cache.clear()
        self._cache.update(found)
        return self._cache

    def can_sort(self, column: int) -> bool:
        """Whether the rows can be sorted by ``column`` (by status and by last change when
        the outbox sorts them, or when the model holds its leads)."""
        if column not in SORT_ORDERS:
            return False
        return column == COL_ID or self._keyed is not None or self._all is not None

    @property
    def sort_column(self) -> int:
        """The column the rows are sorted by (asked for: its query may still run)."""
        return next(column for column, order in SORT_ORDERS.items() if order == self._wanted)

    @property
    def sort_order(self) -> Qt.SortOrder:
        descending = self._wanted_descending
        return Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder

    @property
    def order(self) -> Order:
        """The order of the rows shown."""
        return self._order

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Queue order (by id), by status (``core.delivery.order.STATUS_ORDER``) or by last
        change, then by id; first to last or last to first. Another column's rows come from a
        sorted query in the worker (the rows shown stay until it ends, then take their new
        places in one layout change); the same column the other way round is the same rows
        read backwards. The columns that cannot sort keep the order."""
        if not self.can_sort(column):
            return
        descending = order == Qt.SortOrder.DescendingOrder
        wanted = SORT_ORDERS[column]
        self._wanted_descending = descending
        if wanted != self._wanted:
            self._wanted = wanted
            self.refresh(relayout=True)
            return
        if self._loading and self._order != wanted:
            return  # the sorted query runs: its rows come the way asked for
        if descending == self.descending:
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        positions = [(index.row(), index.column()) for index in old]
        self.descending = descending
        last = len(self._keys) - 1
        self.changePersistentIndexList(
            old, [self.index(last - row, column) for row, column in positions]
        )
        self.layoutChanged.emit()

    # -- data -------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(section) if self.can_sort(section) else None
        if role == Qt.ItemDataRole.InitialSortOrderRole and section == COL_UPDATED:
            return Qt.SortOrder.DescendingOrder.value  # the latest changes first
        return None

    def multiData(self, index: AnyIndex, roleDataSpan: Any) -> None:
        fill_roles(self, index, roleDataSpan)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._keys)):
            return None
        try:
            lead = self.lead_at(index.row())
        except LookupError:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(lead, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column in (COL_STATUS, COL_DETAILS):
                text = details_text(lead, self.paused_reason)
                return text or None
            if column == COL_LEAD:
                return lead_summary(lead) or None
            return None
        if role == Qt.ItemDataRole.ForegroundRole and column == COL_STATUS:
            attention = self.paused_reason and lead.state is State.QUEUED
            return QBrush(qcolor("warning" if attention else STATE_TONES[lead.state]))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (COL_ID, COL_TRIES):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == LeadRole:
            return lead
        if role == StateRole:
            return lead.state.value
        return None

    def _display(self, lead: Lead, column: int) -> str:
        if column == COL_ID:
            return str(lead.row) if lead.row is not None else ""
        if column == COL_BATCH:
            return self._batch_names(lead.batch_id)
        if column == COL_STATUS:
            return status_text(lead, self.paused_reason)
        if column == COL_LEAD:
            return lead_summary(lead)
        if column == COL_PHONE:
            return lead_phone(lead)
        if column == COL_TARGET:
            return self._target_names(lead)
        if column == COL_TRIES:
            return str(lead.attempts)
        if column == COL_DETAILS:
            return details_text(lead, self.paused_reason)
        if column == COL_UPDATED:
            return clock_text(lead.updated_at)
        return ""

    # -- changes ----------------------------------------------------------------------------

    def reset(self, leads: Sequence[Lead]) -> None:
        """Show these leads (no outbox behind the model: filtered in memory)."""
        self._finder = self._pages = None
        self._all = {lead.id: lead for lead in leads}
        self.refresh()

    def update(self, leads: Iterable[Lead]) -> None:
        """Changed or new leads: rows in place, rows in or out as they enter or leave the
        query, and rows moved whose sort key changed (sorted by status or by last change)."""
        if self._loading:
            self._late.extend(leads)
            return
        changed: set[int] = set()  # ids: their rows are known once every removal is made
        last = self.columnCount() - 1
        keep: bool | None = None  # whether moves keep the selection (asked at the first move)
        for lead in leads:
            if self._scanning:  # decided here: the scan's older answer does not undo it
                self._touched.add(lead.id)
            if self._all is not None:
                self._all[lead.id] = lead
            found = self._find(lead.id)
            wanted = self._accepts(lead)
            if found is not None and wanted:
                if lead.id in self._cache or self._all is not None:
                    self._cache[lead.id] = lead
                key = self._key(lead)
                if key != self._keys[found]:
                    if keep is None:
                        keep = self.selection_size() <= MOVE_SELECTION_MAX
                    self._move(found, key, keep)
                changed.add(lead.id)
            elif found is not None:
                row = self._row_of_position(found)
                self.beginRemoveRows(QModelIndex(), row, row)
                self._take(found)
                self._cache.pop(lead.id, None)
                self.endRemoveRows()
            elif wanted:
                key = self._key(lead)
                at = bisect_left(self._keys, key)
                row = at if not self.descending else len(self._keys) - at
                self.beginInsertRows(QModelIndex(), row, row)
                self._put(at, key)
                self._cache[lead.id] = lead
                self._seen = max(self._seen, lead.id)
                self.endInsertRows()
        rows = [row for row in map(self.row_of, changed) if row is not None]
        if rows:
            self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), last))

    def reload(self) -> Any:
        """Many leads changed at once (a bulk control): without a filter or a search no row
        enters or leaves, so in queue order the rows are read again as they are painted (the
        view keeps its place and selection); sorted otherwise, the rows may move: the sorted
        query runs again and they take their places in one layout change; filtered or
        searched, the query runs again."""
        if self._all is None and (self._states is not None or self._needle):
            return self.refresh()
        if self._all is None and self._wanted != "id":
            self._cache.clear()  # the rows painted until the sorted query lands are read again
            return self.refresh(relayout=True)
        self.reread()
        return None

    def reread(self) -> None:
        """Leads changed by another process (no events reach this window about them): the
        rows are read again as they are painted, in place. Which rows a filter or a search
        shows is left as it is (running the query again at every change would reset the view
        and restart a search's scan); the next query decides. Sorted by status or by last
        change, the rows are not moved either: the next query (or a live event) places them."""
        self._cache.clear()
        if self._keys:
            last = self.columnCount() - 1
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._keys) - 1, last))

    def set_paused(self, reason: str) -> None:
        if reason != self.paused_reason:
            self.paused_reason = reason
            if self._keys:
                self.dataChanged.emit(
                    self.index(0, COL_STATUS), self.index(len(self._keys) - 1, COL_DETAILS)
                )


#: The filter choices of the queue view: label -> states (None: all).
FILTERS: dict[str, frozenset[State] | None] = {
    "All leads": None,
    "Waiting to send": frozenset({State.QUEUED, State.SENDING, State.HELD}),
    "Delivered": frozenset({State.DELIVERED}),
    "Rejected": frozenset({State.REJECTED}),
    "Duplicate, maybe delivered": frozenset({State.DUPLICATE}),
    "Failed or cancelled": frozenset({State.FAILED, State.CANCELLED}),
    "Needs a person": frozenset({State.REJECTED, State.DUPLICATE, State.FAILED, State.HELD}),
}
