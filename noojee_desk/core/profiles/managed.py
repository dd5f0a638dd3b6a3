"""Managed settings: one machine-wide file, written by IT, that every user's settings layer over.

The file is ``managed.json`` in the platform's site config folder (``%ProgramData%\\Noojee Desk``
on Windows, ``/Library/Application Support/Noojee Desk`` on macOS, ``Noojee Desk`` below each
folder of ``$XDG_CONFIG_DIRS`` on Linux, the first found wins). The app only ever reads it.

It defines connections, the checking rules, which settings are locked and whether demo mode is
allowed (the schema, with an example, is in docs/deploy.md). The user's own settings layer over
it: an unlocked managed value is a default the user may change, a locked one always wins. A
file that does not fit the schema exactly (not JSON, a wrong type, an unknown key, a bad time
zone or address) is ignored as a whole, and ``ManagedLoad.problem`` says why, for a banner.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
import platformdirs

from noojee_desk import APP_NAME
from noojee_desk.core.leads.dates import DEFAULT_TIMEZONE
from noojee_desk.core.leads.phones import PHONE_FORMATS
from noojee_desk.core.profiles.settings import (
    DEMO_PROFILE,
    MAX_ID,
    Profile,
    Settings,
    SettingsDamaged,
    parse,
)

log = logging.getLogger(__name__)

MANAGED_NAME = "managed.json"
MANAGED_VERSION = 1
MAX_MANAGED_BYTES = 1_000_000
MAX_CONNECTIONS = 100
MAX_NAME = 100
MAX_TEXT = 2_000

#: What a connection says besides its name; the same keys in a managed file and a connection file.
CONNECTION_FIELDS = ("server_url", "ca_bundle", "timezone")
DEFAULT_PICKS = ("template_id", "campaign_id", "allocation_id")
#: The checking rules a managed file may set (strict_ranges: the range checks of lead data).
CHECKING_RULES = ("region", "phone_format", "strict_ranges")
#: What may be locked: a managed connection's fields, and the checking rules.
LOCKABLE = frozenset(CONNECTION_FIELDS + CHECKING_RULES)

ADMIN_NOTE = "set by your administrator"


class ConnectionRefused(ValueError):
    """A connection (in a managed file or a connection file) that cannot be used, and why."""


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """A connection as IT or a colleague describes it: never a key."""

    name: str
    server_url: str
    ca_bundle: str = ""
    timezone: str = DEFAULT_TIMEZONE
    template_id: int | None = None
    campaign_id: int | None = None
    allocation_id: int | None = None

    def profile(self) -> Profile:
        return Profile(
            name=self.name,
            server_url=self.server_url,
            ca_bundle=self.ca_bundle,
            timezone=self.timezone,
            template_id=self.template_id,
            campaign_id=self.campaign_id,
            allocation_id=self.allocation_id,
        )

    @classmethod
    def of(cls, profile: Profile) -> ConnectionSpec:
        return cls(
            profile.name,
            profile.server_url,
            profile.ca_bundle,
            profile.timezone,
            profile.template_id,
            profile.campaign_id,
            profile.allocation_id,
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "server_url": self.server_url}
        if self.ca_bundle:
            data["ca_bundle"] = self.ca_bundle
        data["timezone"] = self.timezone
        for key in DEFAULT_PICKS:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(raw: dict[str, Any], key: str, where: str, default: str, limit: int = MAX_TEXT) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise ConnectionRefused(f"{where}{key} is not text")
    if len(value) > limit:
        raise ConnectionRefused(f"{where}{key} is longer than {limit} characters")
    return value.strip()


def check_address(url: str, where: str = "") -> str:
    """The server address as written, refused when it is no address or carries credentials.

    The rules of the client's own check (core/delivery/api.normalise_base_url), which this
    module, read by the lead checks too, does not import."""
    parts = urlsplit(url if "://" in url else "https://" + url)
    try:
        parts.port  # noqa: B018  (a port that is no number raises)
    except ValueError:
        raise ConnectionRefused(f"{where}server_url has a port that is not a number") from None
    if parts.username is not None or parts.password is not None:
        raise ConnectionRefused(f"{where}server_url holds a user name or password; it must not")
    if parts.query or parts.fragment:
        raise ConnectionRefused(f"{where}server_url has '?' or '#' parts (a key?); it must not")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConnectionRefused(f"{where}server_url is not a server address (https://host)")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConnectionRefused(f"{where}server_url must use https://")
    return url


def read_connection(raw: object, where: str = "") -> ConnectionSpec:
    """A connection from parsed JSON; ConnectionRefused names the first thing wrong with it.

    Every key must be known: a key, a password or a typo is refused rather than dropped."""
    if not isinstance(raw, dict):
        raise ConnectionRefused(f"{where or 'the connection'} is not an object")
    at = f"{where}." if where else ""
    unknown = sorted(set(raw) - {"name", *CONNECTION_FIELDS, *DEFAULT_PICKS})
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise ConnectionRefused(
            f"{where or 'the connection'} has keys Noojee Desk does not know: {shown}"
        )
    name = _text(raw, "name", at, "", MAX_NAME)
    if not name:
        raise ConnectionRefused(f"{at}name is missing or empty")
    if name.lower() == DEMO_PROFILE.lower():
        raise ConnectionRefused(f"{at}name '{name}' is the built-in practice PBX's")
    if "server_url" not in raw:
        raise ConnectionRefused(f"{at}server_url is missing")
    server_url = check_address(_text(raw, "server_url", at, ""), at)
    timezone = _text(raw, "timezone", at, DEFAULT_TIMEZONE, 100)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(timezone)
    except Exception:  # ZoneInfoNotFoundError, ValueError, OSError
        raise ConnectionRefused(f"{at}timezone '{timezone[:40]}' is not a time zone name") from None
    picks: dict[str, int | None] = {}
    for key in DEFAULT_PICKS:
        value = raw.get(key)
        if value is not None and not (_is_int(value) and 0 <= value <= MAX_ID):
            raise ConnectionRefused(f"{at}{key} is not a whole number")
        picks[key] = value
    return ConnectionSpec(
        name,
        server_url,
        _text(raw, "ca_bundle", at, ""),
        timezone,
        picks["template_id"],
        picks["campaign_id"],
        picks["allocation_id"],
    )


@dataclass(frozen=True)
class Managed:
    """What the managed file sets; ``locked`` holds names from ``LOCKABLE``."""

    connections: tuple[ConnectionSpec, ...] = ()
    active_connection: str | None = None
    checking: dict[str, Any] = field(default_factory=dict)
    locked: frozenset[str] = frozenset()
    allow_demo: bool = True

    def connection(self, name: str | None) -> ConnectionSpec | None:
        return next((c for c in self.connections if c.name == name), None)

    def is_locked(self, setting: str, connection: str | None = None) -> bool:
        """Whether ``setting`` (a checking rule, or a field of ``connection``) is locked."""
        if setting not in self.locked:
            return False
        if setting in CONNECTION_FIELDS:
            return self.connection(connection) is not None
        return setting in self.checking

    def layer(self, user: dict[str, Any]) -> dict[str, Any]:
        """The user's settings (parsed JSON) over this file's: locked values always win."""
        raw = dict(user)
        for key, value in self.checking.items():
            if key in self.locked or key not in raw:
                raw[key] = value
        profiles = raw.get("profiles", [])
        profiles = list(profiles) if isinstance(profiles, list) else []
        for spec in self.connections:
            managed = spec.as_dict()
            at = next(
                (
                    i
                    for i, p in enumerate(profiles)
                    if isinstance(p, dict) and p.get("name") == spec.name
                ),
                None,
            )
            if at is None:
                profiles.append(managed)
                continue
            mine = dict(profiles[at])
            mine["demo"] = False
            for key in CONNECTION_FIELDS:
                if key in self.locked or key not in mine:
                    mine[key] = managed.get(key, "")
            for key in DEFAULT_PICKS:
                if mine.get(key) is None and key in managed:
                    mine[key] = managed[key]
            profiles[at] = mine
        if not self.allow_demo:
            profiles = [p for p in profiles if not (isinstance(p, dict) and p.get("demo") is True)]
            if raw.get("active_profile") == DEMO_PROFILE:
                raw["active_profile"] = None
        raw["profiles"] = profiles
        if raw.get("active_profile") is None and self.active_connection is not None:
            raw["active_profile"] = self.active_connection
        return raw

    def enforce(self, settings: Settings) -> None:
        """Put the locked values back (before saving what a person changed)."""
        for key in CHECKING_RULES:
            if self.is_locked(key) and hasattr(settings, key):
                setattr(settings, key, self.checking[key])
        for spec in self.connections:
            profile = settings.profile(spec.name)
            if profile is None:
                continue
            profile.demo = False
            for key in CONNECTION_FIELDS:
                if key in self.locked:
                    setattr(profile, key, getattr(spec, key))
        if not self.allow_demo:
            for profile in [p for p in settings.profiles if p.demo]:
                settings.remove(profile.name)


@dataclass(frozen=True)
class ManagedLoad:
    """The managed file in use (``path``), or why none is (``problem``: damaged, unreadable)."""

    managed: Managed | None = None
    path: Path | None = None
    problem: str = ""

    @property
    def rules(self) -> Managed:
        """What applies: the file's settings, or none (no file, or a damaged one is ignored)."""
        return self.managed or Managed()


def candidates() -> list[Path]:
    """Where a managed file may be, in the order they are tried."""
    folders = platformdirs.site_config_dir(APP_NAME, appauthor=False, multipath=True)
    return [Path(folder) / MANAGED_NAME for folder in folders.split(os.pathsep) if folder]


def _checking(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConnectionRefused("checking is not an object")
    unknown = sorted(set(raw) - set(CHECKING_RULES))
    if unknown:
        raise ConnectionRefused(f"checking has unknown rules: {', '.join(map(repr, unknown[:5]))}")
    rules: dict[str, Any] = {}
    if "region" in raw:
        region = raw["region"]
        if not isinstance(region, str) or region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConnectionRefused("checking.region is not a country code such as AU")
        rules["region"] = region
    if "phone_format" in raw:
        if raw["phone_format"] not in PHONE_FORMATS:
            formats = ", ".join(sorted(PHONE_FORMATS))
            raise ConnectionRefused(f"checking.phone_format is not one of {formats}")
        rules["phone_format"] = raw["phone_format"]
    if "strict_ranges" in raw:
        if not isinstance(raw["strict_ranges"], bool):
            raise ConnectionRefused("checking.strict_ranges is not true or false")
        rules["strict_ranges"] = raw["strict_ranges"]
    return rules


TOP_KEYS = frozenset(
    {"version", "connections", "active_connection", "checking", "locked", "allow_demo"}
)


def from_dict(raw: dict[str, Any]) -> Managed:
    """The managed settings from parsed JSON; ConnectionRefused says what does not fit."""
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConnectionRefused(
            f"it has keys Noojee Desk does not know: {', '.join(map(repr, unknown[:5]))}"
        )
    listed = raw.get("connections", [])
    if not isinstance(listed, list):
        raise ConnectionRefused("connections is not a list")
    if len(listed) > MAX_CONNECTIONS:
        raise ConnectionRefused(f"it lists more than {MAX_CONNECTIONS} connections")
    connections = tuple(read_connection(c, f"connections[{n}]") for n, c in enumerate(listed))
    names = [c.name for c in connections]
    if len(set(names)) != len(names):
        raise ConnectionRefused("two connections have the same name")
    active = raw.get("active_connection")
    if active is not None and active not in names:
        raise ConnectionRefused("active_connection is not the name of a listed connection")
    locked = raw.get("locked", [])
    if not isinstance(locked, list) or not all(isinstance(k, str) for k in locked):
        raise ConnectionRefused("locked is not a list of setting names")
    strange = sorted(set(locked) - LOCKABLE)
    if strange:
        can = ", ".join(sorted(LOCKABLE))
        raise ConnectionRefused(
            f"locked names {', '.join(map(repr, strange[:5]))}; it may lock {can}"
        )
    checking = _checking(raw.get("checking", {}))
    unset = sorted(k for k in locked if k in CHECKING_RULES and k not in checking)
    if unset:
        raise ConnectionRefused(
            f"locked names {', '.join(map(repr, unset))}, which checking does not set"
        )
    allow_demo = raw.get("allow_demo", True)
    if not isinstance(allow_demo, bool):
        raise ConnectionRefused("allow_demo is not true or false")
    return Managed(
        connections,
        active,
        checking,
        frozenset(locked),
        allow_demo,
    )


def load(places: list[Path] | None = None) -> ManagedLoad:
    """The first managed file found; a damaged one is reported and ignored, never raised."""
    for path in candidates() if places is None else places:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_MANAGED_BYTES + 1)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return ManagedLoad(
                None, path, _ignored(path, f"it could not be read ({exc.strerror or exc})")
            )
        try:
            if len(data) > MAX_MANAGED_BYTES:
                raise SettingsDamaged(f"it is larger than {MAX_MANAGED_BYTES // 1000} kB")
            raw, version = parse(data)
            if version > MANAGED_VERSION:
                log.warning(
                    "managed settings of version %d; this version knows %d",
                    version,
                    MANAGED_VERSION,
                )
            managed = from_dict(raw)
        except json.JSONDecodeError as exc:
            why = f"it is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            return ManagedLoad(None, path, _ignored(path, why))
        except (ValueError, TypeError, RecursionError) as exc:
            return ManagedLoad(None, path, _ignored(path, str(exc)))
        log.info("managed settings from %s", path)
        return ManagedLoad(managed, path)
    return ManagedLoad()


def _ignored(path: Path, why: str) -> str:
    text = (
        f"The settings your administrator provides ({path}) are damaged: {why}. They are "
        "ignored, so this computer's own settings are used. Tell your administrator."
    )
    log.warning("%s", text)
    return text
