"""The settings file: a small typed schema with a version, never holding the API key."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from noojee_desk.core.files import atomic_write

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEMO_PROFILE = "Demo"


class SettingsError(Exception):
    """The settings could not be saved (disk full, no permission); the message says what to do."""


@dataclass
class CachedList:
    """The last list the server gave, kept to show offline (marked as not current)."""

    items: list[tuple[int, str]] = field(default_factory=list)
    fetched_at: float = 0.0


@dataclass
class Profile:
    """One PBX connection: where it is and what was last chosen. The key is in the keyring."""

    name: str
    server_url: str = ""
    ca_bundle: str = ""
    demo: bool = False
    timezone: str = "Australia/Sydney"  # the PBX's contact-hours time zone, for callback dates
    template_id: int | None = None
    campaign_id: int | None = None
    allocation_id: int | None = None
    templates: CachedList = field(default_factory=CachedList)
    campaigns: dict[str, CachedList] = field(default_factory=dict)  # by template id
    allocations: dict[str, CachedList] = field(default_factory=dict)  # by campaign id

    @property
    def server_key(self) -> str:
        """Identifies the server for per-server data such as field layouts."""
        return "demo" if self.demo else server_key(self.server_url)


def server_key(url: str) -> str:
    """A server address as per-server data is keyed: no trailing slash, lower case."""
    return url.strip().rstrip("/").lower()


@dataclass
class Settings:
    version: int = SCHEMA_VERSION
    profiles: list[Profile] = field(default_factory=list)
    active_profile: str | None = None
    region: str = "AU"
    phone_format: str = "national"
    day_first: bool = True
    recent_days: int = 30
    max_concurrency: int = 16
    layouts: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<server>|<template id>"
    mappings: dict[str, list[str | None]] = field(default_factory=dict)  # header signature -> map

    def profile(self, name: str | None) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)

    @property
    def active(self) -> Profile | None:
        return self.profile(self.active_profile)

    def upsert(self, profile: Profile) -> None:
        self.profiles = [p for p in self.profiles if p.name != profile.name] + [profile]

    def remove(self, name: str) -> None:
        self.profiles = [p for p in self.profiles if p.name != name]
        if self.active_profile == name:
            self.active_profile = self.profiles[0].name if self.profiles else None


def _cached(raw: Any) -> CachedList:
    if not isinstance(raw, dict):
        return CachedList()
    items = []
    for item in raw.get("items") or []:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            items.append((int(item[0]), str(item[1])))
    fetched = raw.get("fetched_at")
    return CachedList(items, float(fetched) if isinstance(fetched, int | float) else 0.0)


def _optional_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _profile(raw: Any) -> Profile | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        return None
    return Profile(
        name=raw["name"],
        server_url=str(raw.get("server_url") or ""),
        ca_bundle=str(raw.get("ca_bundle") or ""),
        demo=bool(raw.get("demo", False)),
        timezone=str(raw.get("timezone") or "Australia/Sydney"),
        template_id=_optional_int(raw.get("template_id")),
        campaign_id=_optional_int(raw.get("campaign_id")),
        allocation_id=_optional_int(raw.get("allocation_id")),
        templates=_cached(raw.get("templates")),
        campaigns={str(k): _cached(v) for k, v in (raw.get("campaigns") or {}).items()},
        allocations={str(k): _cached(v) for k, v in (raw.get("allocations") or {}).items()},
    )


def from_dict(raw: dict[str, Any]) -> Settings:
    """Settings from parsed JSON; unknown keys are dropped and wrong types fall back to defaults."""
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in ("profiles", "version") or f.name not in raw:
            continue
        value, default = raw[f.name], getattr(defaults, f.name)
        if default is None or isinstance(value, type(default)):
            values[f.name] = value
    profiles = [p for p in (_profile(r) for r in raw.get("profiles") or []) if p is not None]
    settings = Settings(**values, profiles=profiles)
    if settings.active is None:
        settings.active_profile = profiles[0].name if profiles else None
    return settings


class SettingsStore:
    """Loads and saves ``settings.json`` atomically; a damaged file is kept aside, never lost."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.load_warning: str | None = None  # set when the file was damaged and set aside

    def load(self) -> Settings:
        self.load_warning = None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Settings()
        except OSError as exc:
            self.load_warning = f"The settings file could not be read ({exc}); defaults are used."
            return Settings()
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            if int(raw.get("version", 1)) > SCHEMA_VERSION:
                log.warning("settings file is from a newer version; reading what is understood")
            return from_dict(raw)
        except (ValueError, TypeError) as exc:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            self.load_warning = (
                f"The settings file was damaged ({exc}). It was kept as {aside.name} and "
                "default settings are used; your queued leads are not affected."
            )
            log.warning(self.load_warning)
            return Settings()

    def save(self, settings: Settings) -> None:
        data = asdict(settings)
        data["version"] = SCHEMA_VERSION
        text = json.dumps(data, indent=2, ensure_ascii=False)
        try:
            with atomic_write(self.path, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise SettingsError(
                f"Settings could not be saved to {self.path.parent} ({exc.strerror or exc}). "
                "Free some disk space or check the folder's permissions; nothing else was lost."
            ) from exc
