"""Load templates, campaigns and allocations, falling back to the last lists seen when offline."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from noojee_desk.core.delivery.api import ApiError, Choice, NoojeeClient
from noojee_desk.core.delivery.outcome import Kind, Outcome
from noojee_desk.core.profiles.settings import CachedList, Profile

Level = Literal["templates", "campaigns", "allocations"]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A list to show: ``current`` is False when it is the cached list from ``fetched_at``."""

    items: list[Choice]
    current: bool
    fetched_at: float
    error: Outcome | None = None
    note: str = ""  # set when the server's list was cut (too many entries)

    @property
    def error_text(self) -> str:
        if self.error is None:
            return ""
        text = self.error.sentence or self.error.describe()
        return f"{text} {self.error.fix}".strip()

    @property
    def blocked(self) -> bool:
        return self.error is not None and self.error.kind is Kind.BLOCKED


def _cache_of(profile: Profile, level: Level, parent: int | None) -> CachedList | None:
    if level == "templates":
        return profile.templates
    table = profile.campaigns if level == "campaigns" else profile.allocations
    return table.get(str(parent))


def _store(profile: Profile, level: Level, parent: int | None, cached: CachedList) -> None:
    if level == "templates":
        profile.templates = cached
    elif level == "campaigns":
        profile.campaigns[str(parent)] = cached
    else:
        profile.allocations[str(parent)] = cached


async def load(
    client: NoojeeClient, profile: Profile, level: Level, parent: int | None = None
) -> Loaded:
    """Ask the server; on success remember the list in ``profile``, on failure show the last one."""
    try:
        if level == "templates":
            items = await client.list_templates()
        elif level == "campaigns":
            items = await client.list_campaigns(int(parent or 0))
        else:
            items = await client.list_allocations(int(parent or 0))
    except ApiError as exc:
        cached = _cache_of(profile, level, parent)
        old = [Choice(i, n) for i, n in cached.items] if cached else []
        return Loaded(
            old, current=False, fetched_at=cached.fetched_at if cached else 0.0, error=exc.outcome
        )
    now = time.time()
    _store(profile, level, parent, CachedList([(c.id, c.name) for c in items], now))
    return Loaded(items, current=True, fetched_at=now, note=getattr(items, "note", ""))
