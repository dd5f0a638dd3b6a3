"""The queue as a Qt table model: an adapter over the outbox's leads, with a filter proxy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush

from noojee_desk.core.delivery.records import Lead, State
from noojee_desk.core.leads.layouts import is_phone_name
from noojee_desk.ui.itemdata import AnyIndex, fill_roles
from noojee_desk.ui.theme import qcolor

COLUMNS = ("#", "Status", "Lead", "Phone", "Campaign", "Tries", "Details", "Updated")
COL_ID, COL_STATUS, COL_LEAD, COL_PHONE, COL_TARGET, COL_TRIES, COL_DETAILS, COL_UPDATED = range(8)

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
    local = time.localtime(when)
    if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d"):
        return time.strftime("%H:%M", local)
    return time.strftime("%d %b %H:%M", local)


def status_text(lead: Lead, paused_reason: str = "") -> str:
    """The state in a sales person's words."""
    if lead.state is State.QUEUED:
        if paused_reason:
            return "Needs attention"
        if lead.attempts and lead.next_attempt_at > time.time() + 1:
            return f"Retrying at {clock_text(lead.next_attempt_at)}"
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


class QueueModel(QAbstractTableModel):
    """One row per lead, in queue order; ``update`` replaces rows by id as events arrive."""

    def __init__(self, target_names: Callable[[Lead], str] | None = None) -> None:
        super().__init__()
        self._leads: list[Lead] = []
        self._row_of: dict[int, int] = {}
        self._search: dict[int, str] = {}
        self._target_names = target_names or (
            lambda lead: f"#{lead.target.campaign_id} / #{lead.target.allocation_id}"
        )
        self.paused_reason = ""

    # -- data -------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._leads)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def multiData(self, index: AnyIndex, roleDataSpan: Any) -> None:
        fill_roles(self, index, roleDataSpan)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._leads)):
            return None
        lead = self._leads[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(lead, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column in (COL_STATUS, COL_DETAILS):
                text = details_text(lead, self.paused_reason)
                return text or None
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
            return str(lead.row if lead.row is not None else lead.id)
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
        self.beginResetModel()
        self._leads = list(leads)
        self._row_of = {lead.id: i for i, lead in enumerate(self._leads)}
        self._search.clear()
        self.endResetModel()

    def update(self, leads: Iterable[Lead]) -> None:
        """Replace known leads in place and append new ones (queue order is by id)."""
        changed: list[int] = []
        new: list[Lead] = []
        for lead in leads:
            row = self._row_of.get(lead.id)
            if row is None:
                new.append(lead)
            else:
                self._leads[row] = lead
                self._search.pop(lead.id, None)
                changed.append(row)
        if changed:
            last = self.columnCount() - 1
            self.dataChanged.emit(self.index(min(changed), 0), self.index(max(changed), last))
        if new:
            new.sort(key=lambda lead: lead.id)
            first = len(self._leads)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for offset, lead in enumerate(new):
                self._row_of[lead.id] = first + offset
            self._leads.extend(new)
            self.endInsertRows()

    def set_paused(self, reason: str) -> None:
        if reason != self.paused_reason:
            self.paused_reason = reason
            if self._leads:
                self.dataChanged.emit(
                    self.index(0, COL_STATUS), self.index(len(self._leads) - 1, COL_DETAILS)
                )

    def lead_at(self, row: int) -> Lead:
        return self._leads[row]

    def haystack(self, row: int) -> str:
        lead = self._leads[row]
        text = self._search.get(lead.id)
        if text is None:
            text = " ".join(
                [*lead.fields.values(), lead.external_id, lead.sentence, lead.last_message]
            ).casefold()
            self._search[lead.id] = text
        return text


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


class QueueFilter(QSortFilterProxyModel):
    """Filters the queue by state and a free-text search."""

    def __init__(self) -> None:
        super().__init__()
        self._states: frozenset[State] | None = None
        self._needle = ""

    @property
    def states(self) -> frozenset[State] | None:
        return self._states

    def set_states(self, states: frozenset[State] | None) -> None:
        self.beginFilterChange()
        self._states = states
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_search(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def multiData(self, index: AnyIndex, roleDataSpan: Any) -> None:
        """All roles of a cell in one call: by default the proxy asks the queue role by role,
        each time through ``index`` (three calls into Python per role)."""
        fill_roles(self.sourceModel(), self.mapToSource(index), roleDataSpan)

    def filterAcceptsRow(self, row: int, parent: AnyIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, QueueModel):
            return True
        lead = model.lead_at(row)
        if self._states is not None and lead.state not in self._states:
            return False
        return not self._needle or self._needle in model.haystack(row)
