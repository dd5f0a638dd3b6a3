"""The settings file: a small typed schema with a version, never holding the API key.

Reading is strict about shape and lenient about values. A file the schema does not accept (not
UTF-8, not JSON, not an object, a wrong type anywhere, NaN or an infinite number, nesting deeper
than ``MAX_DEPTH``, larger than ``MAX_FILE_BYTES``) is renamed aside as ``settings.json.damaged-…``
and the defaults are used, with ``SettingsStore.load_warning`` saying so. A value of the right
type that is out of range (``max_concurrency`` 0, an unknown region) falls back to its default on
its own, with a log line, and the rest of the file is kept.

A file written by a newer Noojee Desk (a higher ``version``) is opened read-only: what this
version understands is used, anything else is ignored, ``load_warning`` says a newer version
wrote it and ``save`` leaves the file alone, so it is never downgraded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import phonenumbers

from noojee_desk.core.files import atomic_write
from noojee_desk.core.leads.dates import DEFAULT_TIMEZONE
from noojee_desk.core.leads.phones import PHONE_FORMATS

if TYPE_CHECKING:
    from noojee_desk.core.profiles.managed import Managed

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEMO_PROFILE = "Demo"

MAX_FILE_BYTES = 5_000_000  # a larger settings file is damaged, and is never written
MAX_DEPTH = 32  # JSON nesting; what we write is 6 deep
MAX_CACHED = 5_000  # entries of each cached list, and cached lists per profile and level
MAX_CACHED_NAME = 200  # characters of a cached list entry's name
MAX_ID = 2**63 - 1
MAX_CONCURRENCY = 256
MAX_RECENT_DAYS = 3_650


class SettingsError(Exception):
    """The settings could not be saved (disk full, no permission); the message says what to do."""


class SettingsDamaged(ValueError):
    """The file does not fit the schema; it is set aside."""


def _capped_items(items: list[tuple[int, str]]) -> list[tuple[int, str]]:
    if len(items) > MAX_CACHED:
        log.warning("a cached list of %d entries is cut to the first %d", len(items), MAX_CACHED)
        items = items[:MAX_CACHED]
    if any(len(name) > MAX_CACHED_NAME for _, name in items):
        items = [(i, name[:MAX_CACHED_NAME]) for i, name in items]
    return items


@dataclass
class CachedList:
    """The last list the server gave, kept to show offline (marked as not current).

    At most ``MAX_CACHED`` entries are kept, each name at most ``MAX_CACHED_NAME`` characters.
    """

    items: list[tuple[int, str]] = field(default_factory=list)
    fetched_at: float = 0.0

    def __post_init__(self) -> None:
        self.items = _capped_items(self.items)


@dataclass
class Profile:
    """One PBX connection: where it is and what was last chosen. The key is in the keyring."""

    name: str
    server_url: str = ""
    ca_bundle: str = ""
    demo: bool = False
    timezone: str = DEFAULT_TIMEZONE  # the PBX's contact-hours time zone, for callback dates
    strict_ranges: bool = False  # block numbers outside the known number ranges (else warn)
    proxy: str = ""  # this connection's proxy (no user or password); "" for the system's
    template_id: int | None = None
    campaign_id: int | None = None
    allocation_id: int | None = None
    templates: CachedList = field(default_factory=CachedList)
    campaigns: dict[str, CachedList] = field(default_factory=dict)  # by template id
    allocations: dict[str, CachedList] = field(default_factory=dict)  # by campaign id

    def choose_template(self, template_id: int) -> bool:
        """Remember a template pick; another template forgets the campaign and allocation."""
        if self.template_id == template_id:
            return False
        self.template_id, self.campaign_id, self.allocation_id = template_id, None, None
        return True

    def choose_campaign(self, campaign_id: int) -> bool:
        """Remember a campaign pick; another campaign forgets the allocation."""
        if self.campaign_id == campaign_id:
            return False
        self.campaign_id, self.allocation_id = campaign_id, None
        return True

    def choose_allocation(self, allocation_id: int) -> bool:
        if self.allocation_id == allocation_id:
            return False
        self.allocation_id = allocation_id
        return True

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
    allow_plaintext_keyring: bool = False  # keys even in a plain-file store
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


# -- reading -------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError for odd keys, OSError
        return False
    return True


def _is_mapping(value: object) -> bool:
    return isinstance(value, list) and all(m is None or isinstance(m, str) for m in value)


def _valid_region(code: str) -> bool:
    return code in phonenumbers.SUPPORTED_REGIONS


class _Reader:
    """The schema. ``strict``: a wrong type raises SettingsDamaged; else it gives the default."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def wrong(self, where: str, expected: str) -> None:
        if self.strict:
            raise SettingsDamaged(f"{where} is not {expected}")
        log.warning("settings: %s is not %s; it is ignored", where, expected)

    def value(
        self,
        raw: dict[str, Any],
        key: str,
        where: str,
        default: Any,
        accepts: Callable[[object], bool],
        expected: str,
        in_range: Callable[[Any], bool] | None = None,
    ) -> Any:
        """``raw[key]`` if present and of its type (else damaged), and in range (else default)."""
        if key not in raw:
            return default
        value = raw[key]
        if not accepts(value):
            self.wrong(f"{where}{key}", expected)
            return default
        if in_range is not None and not in_range(value):
            shown = repr(value)[:40] if not _is_int(value) or abs(value) < 10**12 else "too big"
            log.warning(
                "settings: %s%s %s is out of range; the default %r is used",
                where,
                key,
                shown,
                default,
            )
            return default
        return value

    def mapping(self, raw: object, where: str) -> dict[str, Any] | None:
        if isinstance(raw, dict):
            return raw
        self.wrong(where, "an object")
        return None

    def optional_id(self, raw: dict[str, Any], key: str, where: str) -> int | None:
        return self.value(
            raw,
            key,
            where,
            None,
            lambda v: v is None or _is_int(v),
            "a whole number or null",
            lambda v: v is None or 0 <= v <= MAX_ID,
        )

    def cached(self, raw: object, where: str) -> CachedList:
        data = self.mapping(raw, where)
        if data is None:
            return CachedList()
        items_raw = self.value(
            data, "items", where + ".", [], lambda v: isinstance(v, list), "a list"
        )
        if len(items_raw) > MAX_CACHED:
            log.warning(
                "settings: %sitems has %d entries; the first %d are kept",
                where + ".",
                len(items_raw),
                MAX_CACHED,
            )
            items_raw = items_raw[:MAX_CACHED]
        items: list[tuple[int, str]] = []
        for n, item in enumerate(items_raw):
            if not (
                isinstance(item, list)
                and len(item) == 2
                and _is_int(item[0])
                and isinstance(item[1], str)
            ):
                self.wrong(f"{where}.items[{n}]", "an [id, name] pair")
                continue
            if 0 <= item[0] <= MAX_ID:
                items.append((item[0], item[1]))
            else:
                log.warning(
                    "settings: %s.items[%d] has an id out of range; it is dropped", where, n
                )
        fetched = self.value(
            data,
            "fetched_at",
            where + ".",
            0.0,
            _is_number,
            "a number",
            lambda v: 0 <= v <= 1e12,
        )
        return CachedList(items, float(fetched))

    def cached_table(self, raw: dict[str, Any], key: str, where: str) -> dict[str, CachedList]:
        table = self.value(raw, key, where, {}, lambda v: isinstance(v, dict), "an object")
        if len(table) > MAX_CACHED:
            log.warning(
                "settings: %s%s has %d lists; the first %d are kept",
                where,
                key,
                len(table),
                MAX_CACHED,
            )
        return {k: self.cached(v, f"{where}{key}.{k}") for k, v in list(table.items())[:MAX_CACHED]}

    def proxy(self, text: str, where: str) -> str:
        """A connection's proxy; "" when it holds a user name or password (the connect dialog
        refuses those: they must not sit in this file), with a log line that does not repeat
        it. The client checks the rest of the address (``api.check_proxy``)."""
        text = text.strip()
        if "@" in text.partition("://")[2 if "://" in text else 0].partition("/")[0]:
            log.warning("settings: %sproxy holds a user name or password; no proxy is set", where)
            return ""
        return text

    def profile(self, raw: object, where: str) -> Profile | None:
        data = self.mapping(raw, where)
        if data is None:
            return None
        if not isinstance(data.get("name"), str):
            self.wrong(f"{where}.name", "text")
            return None
        if not data["name"]:
            log.warning("settings: %s has an empty name; it is dropped", where)
            return None
        at = f"{where}."

        def text(key: str, default: str, in_range: Callable[[Any], bool] | None = None) -> str:
            return self.value(
                data, key, at, default, lambda v: isinstance(v, str), "text", in_range
            )

        return Profile(
            name=data["name"],
            server_url=text("server_url", ""),
            ca_bundle=text("ca_bundle", ""),
            demo=self.value(
                data, "demo", at, False, lambda v: isinstance(v, bool), "true or false"
            ),
            timezone=text("timezone", DEFAULT_TIMEZONE, _valid_zone),
            strict_ranges=self.value(
                data, "strict_ranges", at, False, lambda v: isinstance(v, bool), "true or false"
            ),
            proxy=self.proxy(text("proxy", ""), at),
            template_id=self.optional_id(data, "template_id", at),
            campaign_id=self.optional_id(data, "campaign_id", at),
            allocation_id=self.optional_id(data, "allocation_id", at),
            templates=self.cached(data.get("templates", {}), f"{at}templates"),
            campaigns=self.cached_table(data, "campaigns", at),
            allocations=self.cached_table(data, "allocations", at),
        )

    def settings(self, raw: dict[str, Any]) -> Settings:
        is_text = lambda v: isinstance(v, str)  # noqa: E731
        is_bool = lambda v: isinstance(v, bool)  # noqa: E731
        profiles_raw = self.value(raw, "profiles", "", [], lambda v: isinstance(v, list), "a list")
        profiles = [
            p
            for p in (self.profile(r, f"profiles[{n}]") for n, r in enumerate(profiles_raw))
            if p is not None
        ]
        layouts = self.value(raw, "layouts", "", {}, lambda v: isinstance(v, dict), "an object")
        for key in [k for k, v in layouts.items() if not isinstance(v, dict)]:
            self.wrong(f"layouts.{key}", "an object")
            layouts = {k: v for k, v in layouts.items() if k != key}
        mappings = self.value(raw, "mappings", "", {}, lambda v: isinstance(v, dict), "an object")
        for key in [k for k, v in mappings.items() if not _is_mapping(v)]:
            self.wrong(f"mappings.{key}", "a list of field names")
            mappings = {k: v for k, v in mappings.items() if k != key}
        settings = Settings(
            profiles=profiles,
            active_profile=self.value(
                raw, "active_profile", "", None, lambda v: v is None or is_text(v), "text or null"
            ),
            region=self.value(raw, "region", "", "AU", is_text, "text", _valid_region),
            phone_format=self.value(
                raw, "phone_format", "", "national", is_text, "text", PHONE_FORMATS.__contains__
            ),
            day_first=self.value(raw, "day_first", "", True, is_bool, "true or false"),
            recent_days=self.value(
                raw,
                "recent_days",
                "",
                30,
                _is_int,
                "a whole number",
                lambda v: 0 <= v <= MAX_RECENT_DAYS,
            ),
            max_concurrency=self.value(
                raw,
                "max_concurrency",
                "",
                16,
                _is_int,
                "a whole number",
                lambda v: 1 <= v <= MAX_CONCURRENCY,
            ),
            allow_plaintext_keyring=self.value(
                raw, "allow_plaintext_keyring", "", False, is_bool, "true or false"
            ),
            layouts=layouts,
            mappings=mappings,
        )
        if settings.active is None:
            settings.active_profile = profiles[0].name if profiles else None
        return settings


def _depth(value: object) -> int:
    """How deeply ``value`` nests lists and objects, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise SettingsDamaged(f"the number {text[:20]} is too large")
    return value


def _no_constant(text: str) -> Any:
    raise SettingsDamaged(f"{text} is not a number JSON allows")


def parse(data: bytes) -> tuple[dict[str, Any], int]:
    """The settings object and its version from the file's bytes; SettingsDamaged if unusable."""
    if len(data) > MAX_FILE_BYTES:
        raise SettingsDamaged(f"it is larger than {MAX_FILE_BYTES // 1_000_000} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsDamaged(f"it is not UTF-8 text: byte {exc.start}") from None
    try:
        raw = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise SettingsDamaged("it is nested too deeply") from None
    if not isinstance(raw, dict):
        raise SettingsDamaged("it is not a JSON object")
    if _depth(raw) > MAX_DEPTH:
        raise SettingsDamaged("it is nested too deeply")
    version = raw.get("version", SCHEMA_VERSION)
    if not _is_int(version):
        raise SettingsDamaged("its version is not a whole number")
    return raw, version


def from_dict(raw: dict[str, Any], *, strict: bool = True) -> Settings:
    """Settings from parsed JSON; unknown keys are dropped, out-of-range values give defaults.

    ``strict``: a wrong type raises SettingsDamaged; otherwise that value is ignored too.
    """
    return _Reader(strict).settings(raw)


class SettingsStore:
    """Loads and saves ``settings.json`` atomically; a damaged file is kept aside, never lost.

    ``read_only`` is set when the file was written by a newer version: it is then never saved.
    ``managed``: the machine-wide settings the file layers over (see core/profiles/managed.py);
    the locked ones win over what the file says, and are put back before every save.
    """

    def __init__(self, path: Path, managed: Managed | None = None) -> None:
        self.path = path
        self.managed = managed
        self.load_warning: str | None = None  # set when the file was damaged, unread or newer
        self.set_aside: Path | None = None  # where a damaged file was kept
        self.read_only = False
        # Writes may come from a worker (``encode`` then ``write``): one at a time, and one
        # encoded earlier never replaces one encoded later.
        self._write_lock = threading.Lock()
        self._encoded = 0
        self._written = 0

    def load(self) -> Settings:
        """The user's settings over the managed ones (when there are)."""
        settings = self._load()
        if self.managed is not None:
            self.managed.enforce(settings)
        return settings

    def _layered(self, raw: dict[str, Any], *, strict: bool = True) -> Settings:
        if self.managed is not None:
            raw = self.managed.layer(raw)
        return from_dict(raw, strict=strict)

    def _load(self) -> Settings:
        self.load_warning, self.set_aside, self.read_only = None, None, False
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return self._layered({})
        except OSError as exc:
            self.load_warning = f"The settings file could not be read ({exc}); defaults are used."
            return self._layered({})
        try:
            raw, version = parse(data)
            if version > SCHEMA_VERSION:
                return self._newer(raw, version)
            return self._layered(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            return self._damaged(exc)

    def _newer(self, raw: dict[str, Any], version: int) -> Settings:
        self.read_only = True
        shown = str(version) if version < 10**6 else "unknown"
        self.load_warning = (
            f"The settings file was written by a newer Noojee Desk (settings version {shown}; "
            f"this one knows version {SCHEMA_VERSION}). What this version understands is used, "
            "and the file is not changed: settings changed now last until the app closes. "
            "Update Noojee Desk to keep them."
        )
        log.warning(self.load_warning)
        try:
            return self._layered(raw, strict=False)
        except Exception:  # never set a newer version's file aside
            log.exception("settings of a newer version could not be read; defaults are used")
            return self._layered({})

    def _damaged(self, exc: BaseException) -> Settings:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for n in range(2, 100):  # a second damaged file in the same second keeps the first
            if not aside.exists():
                break
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
            self.set_aside = aside
        self.load_warning = (
            f"The settings file was damaged ({exc}). It was kept as {aside.name} and "
            "default settings are used; your queued leads are not affected."
        )
        log.warning(self.load_warning)
        return self._layered({})

    def save(self, settings: Settings) -> None:
        encoded = self.encode(settings)
        if encoded is not None:
            self.write(*encoded)

    def encode(self, settings: Settings) -> tuple[int, bytes] | None:
        """What ``save`` writes, and its place in the order of saves (None: nothing to save).
        Quick; the slow part, the synced write, is ``write``, which a worker thread may do."""
        if self.read_only:
            log.info("settings not saved: the file was written by a newer Noojee Desk")
            return None
        if self.managed is not None:
            self.managed.enforce(settings)
        data = asdict(settings)
        data["version"] = SCHEMA_VERSION
        payload = _encode(data)
        if len(payload) > MAX_FILE_BYTES:
            log.warning(
                "settings of %d bytes are over the %d limit; the cached lists are left out",
                len(payload),
                MAX_FILE_BYTES,
            )
            for profile in data["profiles"]:
                profile.update(templates=asdict(CachedList()), campaigns={}, allocations={})
            payload = _encode(data)
        if len(payload) > MAX_FILE_BYTES:
            raise SettingsError(
                f"Settings could not be saved: they would take {len(payload) // 1_000_000} MB, "
                f"more than the {MAX_FILE_BYTES // 1_000_000} MB a settings file may have. "
                "Remove saved field layouts or column mappings you no longer use."
            )
        self._encoded += 1
        return self._encoded, payload

    def write(self, order: int, payload: bytes) -> None:
        """Writes what ``encode`` gave, unless settings encoded after it were written already."""
        with self._write_lock:
            if order < self._written:
                return
            try:
                with atomic_write(self.path, "wb") as handle:
                    handle.write(payload)
            except OSError as exc:
                raise SettingsError(
                    f"Settings could not be saved to {self.path.parent} ({exc.strerror or exc}). "
                    "Free some disk space or check the folder's permissions; nothing else was "
                    "lost."
                ) from exc
            self._written = order


def _encode(data: dict[str, Any]) -> bytes:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a damaged source: keep it as an escape
        return json.dumps(data, indent=2, ensure_ascii=True).encode("ascii")
