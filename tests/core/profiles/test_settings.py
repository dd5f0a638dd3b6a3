"""The settings file: round trip, damaged files set aside, out-of-range values, newer versions,
caps, unsaveable folder reported, and ``send`` meeting a damaged file."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from noojee_desk.core.paths import resolve
from noojee_desk.core.profiles.settings import (
    MAX_CACHED,
    MAX_CACHED_NAME,
    MAX_FILE_BYTES,
    CachedList,
    Profile,
    Settings,
    SettingsError,
    SettingsStore,
)


def test_round_trip_keeps_profiles_choices_and_cached_lists(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings(active_profile="Prod", region="NZ", day_first=False)
    prod = Profile("Prod", server_url="https://pbx.example.com", template_id=3, campaign_id=42)
    prod.templates = CachedList([(3, "Home Loans"), (7, "Solar")], fetched_at=123.0)
    prod.campaigns["3"] = CachedList([(42, "Jan16a")], fetched_at=124.0)
    settings.upsert(prod)
    settings.layouts["https://pbx.example.com|3"] = {"fields": [{"name": "Name"}]}
    settings.mappings["sig"] = ["Name", None]
    store.save(settings)

    loaded = store.load()
    assert loaded == settings
    assert loaded.active is not None
    assert loaded.active.templates.items == [(3, "Home Loans"), (7, "Solar")]
    assert store.load_warning is None


def test_a_write_encoded_earlier_never_replaces_one_encoded_later(tmp_path: Path) -> None:
    """A worker may write the settings (the loop's thread must not wait for a disk sync): the
    last settings encoded are the ones kept, whichever write ends last."""
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings(region="AU")
    first = store.encode(settings)
    settings.region = "NZ"
    second = store.encode(settings)
    assert first is not None
    assert second is not None
    store.write(*second)
    store.write(*first)  # late: the older settings are not written over the newer ones
    assert store.load().region == "NZ"
    settings.region = "GB"
    store.save(settings)
    assert store.load().region == "GB"


def test_the_range_rule_of_a_profile_is_stored_and_read_back(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings()
    settings.upsert(Profile("Strict", server_url="https://pbx.example.com", strict_ranges=True))
    settings.upsert(Profile("Lenient", server_url="https://pbx2.example.com"))
    store.save(settings)
    stored = json.loads((tmp_path / "settings.json").read_text(encoding="utf-8"))
    assert [p["strict_ranges"] for p in stored["profiles"]] == [True, False]
    loaded = store.load()
    strict, lenient = loaded.profile("Strict"), loaded.profile("Lenient")
    assert strict is not None
    assert strict.strict_ranges is True
    assert lenient is not None
    assert lenient.strict_ranges is False
    # A file written before the rule existed: numbers outside known ranges warn.
    del stored["profiles"][0]["strict_ranges"]
    (tmp_path / "settings.json").write_text(json.dumps(stored), encoding="utf-8")
    older = store.load().profile("Strict")
    assert older is not None
    assert older.strict_ranges is False


def test_damaged_file_is_set_aside_and_defaults_used(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"profiles": [ {"name": "Prod", ', encoding="utf-8")
    store = SettingsStore(path)
    settings = store.load()
    assert settings == Settings()
    assert store.load_warning is not None
    assert "damaged" in store.load_warning
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("settings.json.damaged-")]
    assert len(kept) == 1
    assert kept[0].read_text(encoding="utf-8").startswith('{"profiles"')


def test_settings_file_never_holds_a_key_field(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings()
    settings.upsert(Profile("Prod", server_url="https://pbx.example.com"))
    store.save(settings)
    text = (tmp_path / "settings.json").read_text(encoding="utf-8").lower()
    assert "apikey" not in text
    assert "api_key" not in text


def test_full_disk_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    store.save(Settings(region="AU"))
    monkeypatch.setattr(os, "fsync", no_space)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(SettingsError, match="No space left"):
        store.save(Settings(region="NZ"))
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


# -- damaged files are set aside ------------------------------------------------------------------


def _profile_with(**values: Any) -> bytes:
    return json.dumps({"version": 1, "profiles": [{"name": "A", **values}]}).encode()


DAMAGED = {
    "invalid UTF-8": b'{"region": "N\xffZ"}',
    "campaigns a list": _profile_with(campaigns=[1]),
    "allocations text": _profile_with(allocations="x"),
    "templates text": _profile_with(templates="x"),
    "cached item not a pair": _profile_with(templates={"items": [[1, "x"], ["bad"]]}),
    "id as text": _profile_with(template_id="12"),
    "profile not an object": b'{"profiles": ["junk"]}',
    "profile without a name": b'{"profiles": [{"no": "name"}]}',
    "profiles an object": b'{"profiles": {"name": "A"}}',
    "region a number": b'{"region": 5}',
    "flag as text": b'{"day_first": "yes"}',
    "range rule as text": _profile_with(strict_ranges="yes"),
    "range rule as a number": _profile_with(strict_ranges=1),
    "count as a flag": b'{"max_concurrency": true}',
    "count as a float": b'{"recent_days": 30.5}',
    "active profile a number": b'{"active_profile": 3}',
    "layout a list": b'{"layouts": {"k|1": []}}',
    "mapping of numbers": b'{"mappings": {"sig": [1, 2]}}',
    "version 1e400": b'{"version": 1e400}',
    "version as text": b'{"version": "2"}',
    "NaN": b'{"recent_days": NaN}',
    "Infinity": b'{"profiles": [{"name": "A", "templates": {"fetched_at": Infinity}}]}',
    "a 5000-digit number": b'{"recent_days": ' + b"9" * 5000 + b"}",
    "nesting past the recursion limit": b'{"layouts": {"k": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}}",
    "nesting past the schema's depth": b'{"layouts": {"k": {"f": ' + b"[" * 60 + b"]" * 60 + b"}}}",
    "a list at the top": b"[]",
    "text at the top": b'"settings"',
    "null at the top": b"null",
    "invalid JSON": b'{"profiles": [ {"name": "Prod", ',
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_file_the_schema_does_not_accept_is_set_aside(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    store = SettingsStore(path)
    settings = store.load()
    assert settings == Settings()
    assert store.load_warning is not None
    assert "damaged" in store.load_warning
    assert not path.exists()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("settings.json.damaged-")]
    assert len(kept) == 1
    assert store.set_aside == kept[0]
    assert kept[0].read_bytes() == content
    store.save(settings)  # and the app can go on saving its defaults
    assert SettingsStore(path).load() == Settings()


def test_a_second_damaged_file_in_the_same_second_keeps_the_first(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    for content in (b"[1]", b"[2]"):
        path.write_bytes(content)
        SettingsStore(path).load()
    kept = sorted(p.read_bytes() for p in tmp_path.iterdir() if ".damaged-" in p.name)
    assert kept == [b"[1]", b"[2]"]


def test_a_file_over_the_size_limit_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"region": "NZ"}) + " " * MAX_FILE_BYTES, encoding="utf-8")
    store = SettingsStore(path)
    assert store.load() == Settings()
    assert store.load_warning is not None
    assert "larger than 5 MB" in store.load_warning
    assert store.set_aside is not None
    assert store.set_aside.stat().st_size > MAX_FILE_BYTES


# -- values of the right type but out of range fall back one by one --------------------------------

OUT_OF_RANGE = [
    ("max_concurrency", 0, lambda s: s.max_concurrency, 16),
    ("max_concurrency", -5, lambda s: s.max_concurrency, 16),
    ("max_concurrency", 10**30, lambda s: s.max_concurrency, 16),
    ("recent_days", -1, lambda s: s.recent_days, 30),
    ("phone_format", "fancy", lambda s: s.phone_format, "national"),
    ("region", "XX", lambda s: s.region, "AU"),
    ("timezone", "Mars/Olympus_Mons", lambda s: s.profiles[0].timezone, "Australia/Sydney"),
    ("timezone", "../../etc/passwd", lambda s: s.profiles[0].timezone, "Australia/Sydney"),
    ("template_id", -3, lambda s: s.profiles[0].template_id, None),
    ("campaign_id", 2**70, lambda s: s.profiles[0].campaign_id, None),
]


@pytest.mark.parametrize(
    ("key", "value", "read", "default"),
    OUT_OF_RANGE,
    ids=[f"{key}={str(value)[:12]}" for key, value, _r, _d in OUT_OF_RANGE],
)
def test_an_out_of_range_value_falls_back_on_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, key: str, value: Any, read: Any, default: Any
) -> None:
    profile: dict[str, Any] = {"name": "Prod", "server_url": "https://pbx", "template_id": 3}
    raw: dict[str, Any] = {"version": 1, "region": "NZ", "day_first": False, "profiles": [profile]}
    if key in ("timezone", "template_id", "campaign_id"):
        profile[key] = value
    else:
        raw[key] = value
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    store = SettingsStore(path)
    with caplog.at_level(logging.WARNING, logger="noojee_desk.core.profiles.settings"):
        settings = store.load()
    assert read(settings) == default
    assert store.load_warning is None
    assert path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    assert key in caplog.text
    assert "out of range" in caplog.text
    kept = settings.profiles[0]  # everything else survives
    assert (kept.name, kept.server_url) == ("Prod", "https://pbx")
    if key != "region":
        assert settings.region == "NZ"
    assert settings.day_first is False


def test_a_cached_entry_with_an_id_out_of_range_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(_profile_with(templates={"items": [[-1, "neg"], [3, "ok"]], "fetched_at": -5}))
    settings = SettingsStore(path).load()
    assert settings.profiles[0].templates == CachedList([(3, "ok")], 0.0)


# -- a file from a newer version ------------------------------------------------------------------


def test_a_newer_versions_file_is_used_read_only_and_never_saved_over(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    raw = {
        "version": 2,
        "region": 5,  # perhaps a new shape: this version ignores it, never sets the file aside
        "day_first": False,
        "max_concurrency": 4,
        "profiles": [
            {"name": "A", "template_id": "12", "templates": {"items": [[1, "x"], ["bad"]]}},
            {"no": "name"},
            "junk",
        ],
        "active_profile": "missing",
        "dialler_theme": {"colour": "teal"},  # unknown here
    }
    path.write_text(json.dumps(raw), encoding="utf-8")
    before = path.read_bytes()
    store = SettingsStore(path)
    settings = store.load()
    assert store.read_only
    assert store.load_warning is not None
    assert "newer Noojee Desk" in store.load_warning
    assert store.set_aside is None
    assert settings.region == "AU"
    assert settings.day_first is False
    assert settings.max_concurrency == 4
    assert [p.name for p in settings.profiles] == ["A"]
    assert settings.profiles[0].template_id is None
    assert settings.profiles[0].templates.items == [(1, "x")]
    assert settings.active_profile == "A"
    settings.region = "NZ"
    store.save(settings)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


# -- caps -----------------------------------------------------------------------------------------


def test_a_million_cached_campaigns_are_capped_and_saving_stays_quick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings()
    profile = Profile("Prod")
    with caplog.at_level(logging.WARNING, logger="noojee_desk.core.profiles.settings"):
        profile.campaigns["3"] = CachedList(
            [(i, f"Campaign {i}" + "x" * 300 * (i == 0)) for i in range(1_000_000)], 1.0
        )
    assert f"first {MAX_CACHED}" in caplog.text
    settings.upsert(profile)
    store = SettingsStore(tmp_path / "settings.json")
    started = time.monotonic()
    store.save(settings)
    assert time.monotonic() - started < 3.0  # 6 s before the cap
    assert (tmp_path / "settings.json").stat().st_size < 1_000_000
    items = store.load().profiles[0].campaigns["3"].items
    assert len(items) == MAX_CACHED
    assert len(items[0][1]) == MAX_CACHED_NAME
    assert items[-1] == (MAX_CACHED - 1, f"Campaign {MAX_CACHED - 1}")


def test_a_file_with_too_many_cached_entries_loads_the_first_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "settings.json"
    lists = {str(t): {"items": [[1, "c"]]} for t in range(MAX_CACHED + 10)}
    path.write_bytes(
        _profile_with(templates={"items": [[i, "t"] for i in range(20_000)]}, allocations=lists)
    )
    with caplog.at_level(logging.WARNING, logger="noojee_desk.core.profiles.settings"):
        profile = SettingsStore(path).load().profiles[0]
    assert len(profile.templates.items) == MAX_CACHED
    assert len(profile.allocations) == MAX_CACHED
    assert f"the first {MAX_CACHED} are kept" in caplog.text


def test_settings_too_large_to_save_drop_the_cached_lists_first(tmp_path: Path) -> None:
    settings = Settings()
    profile = Profile("Prod", template_id=3)
    names = [(i, "n" * MAX_CACHED_NAME) for i in range(MAX_CACHED)]
    profile.campaigns = {str(t): CachedList(names, 1.0) for t in range(6)}  # about 6.5 MB
    settings.upsert(profile)
    store = SettingsStore(tmp_path / "settings.json")
    store.save(settings)
    assert (tmp_path / "settings.json").stat().st_size < MAX_FILE_BYTES
    loaded = store.load()
    assert loaded.profiles[0].template_id == 3
    assert loaded.profiles[0].campaigns == {}
    settings.mappings = {f"sig{i}": ["n" * 100] * 10 for i in range(6_000)}  # not a cache
    with pytest.raises(SettingsError, match="more than the 5 MB"):
        store.save(settings)
    assert store.load().profiles[0].template_id == 3  # the last good file stays


def test_text_that_is_not_valid_unicode_still_saves(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"profiles": [{"name": "A", "server_url": "https://\\ud800"}]}', "utf-8")
    store = SettingsStore(path)
    settings = store.load()
    store.save(settings)
    assert store.load() == settings


# -- any JSON-ish content loads ------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["AU", "national", "e164", "Europe/Paris", "3", ""])
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
PROFILE_KEYS = [
    "name", "server_url", "ca_bundle", "demo", "timezone", "strict_ranges", "template_id",
    "campaign_id",
    "allocation_id", "templates", "campaigns", "allocations",
]  # fmt: skip
SETTINGS_KEYS = [
    "version", "active_profile", "region", "phone_format", "day_first", "recent_days",
    "max_concurrency", "layouts", "mappings",
]  # fmt: skip
CACHED = st.fixed_dictionaries(
    {},
    optional={"items": st.lists(st.lists(SCALARS, max_size=3), max_size=3), "fetched_at": SCALARS},
)
PROFILE = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=5)},
    optional={
        **{key: JSONISH for key in PROFILE_KEYS[1:]},
        "templates": CACHED | JSONISH,
        "campaigns": st.dictionaries(st.text(max_size=3), CACHED, max_size=2) | JSONISH,
    },
)
SETTINGS_LIKE = st.fixed_dictionaries(
    {},
    optional={
        **{key: JSONISH for key in SETTINGS_KEYS},
        "version": st.integers(min_value=-1, max_value=3) | JSONISH,
        "profiles": st.lists(PROFILE | JSONISH, max_size=3) | JSONISH,
    },
)


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSONISH, SETTINGS_LIKE))
def test_any_json_value_as_the_settings_file_loads_and_saves(value: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.json"
        path.write_text(json.dumps(value), encoding="utf-8")
        store = SettingsStore(path)
        settings = store.load()
        assert isinstance(settings, Settings)
        assert (store.load_warning is None) == (store.set_aside is None and not store.read_only)
        store.save(settings)
        again = SettingsStore(path)
        if not store.read_only:
            assert again.load() == settings
            assert again.load_warning is None


# -- the send command ------------------------------------------------------------------------------


SEND_DAMAGED = ["campaigns a list", "invalid UTF-8", "version 1e400"]


@pytest.mark.parametrize("content", [DAMAGED[k] for k in SEND_DAMAGED], ids=SEND_DAMAGED)
def test_send_with_a_damaged_settings_file_says_so_and_exits_2(
    tmp_path: Path, content: bytes
) -> None:
    home = tmp_path / "home"
    settings_path = resolve(home).settings
    settings_path.parent.mkdir(parents=True)
    settings_path.write_bytes(content)
    leads = tmp_path / "leads.csv"
    leads.write_text("Name,FirstPhone\nAnn Lee,0412000001\n", encoding="utf-8")
    argv = [sys.executable, "-m", "noojee_desk", "send", str(leads), "--server", "https://pbx"]
    argv += ["--template", "3", "--campaign", "42", "--allocation", "101", "--dry-run"]
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "The settings file was damaged" in done.stderr
    assert "Nothing was sent" in done.stderr
    assert done.stdout == ""
    assert any(p.name.startswith("settings.json.damaged-") for p in settings_path.parent.iterdir())


def test_send_with_a_newer_versions_settings_file_uses_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings_path = resolve(home).settings
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text('{"version": 9, "region": "NZ", "new": []}', encoding="utf-8")
    leads = tmp_path / "leads.csv"
    leads.write_text("Name,FirstPhone\nAnn Lee,021 123 4567\n", encoding="utf-8")
    argv = [sys.executable, "-m", "noojee_desk", "send", str(leads), "--server", "https://pbx"]
    argv += ["--template", "3", "--campaign", "42", "--allocation", "101", "--dry-run", "--json"]
    env = dict(os.environ, NOOJEE_DESK_HOME=str(home))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert settings_path.read_text(encoding="utf-8") == '{"version": 9, "region": "NZ", "new": []}'


def test_a_connections_proxy_is_stored_and_one_with_a_password_is_never_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings()
    settings.upsert(Profile("Site", "https://pbx.example.com", proxy="Proxy.Corp:3128"))
    settings.upsert(Profile("Direct", "https://pbx2.example.com"))
    store.save(settings)
    loaded = store.load()
    site, direct = loaded.profile("Site"), loaded.profile("Direct")
    assert site is not None
    assert site.proxy == "Proxy.Corp:3128"  # the client spells it out (api.check_proxy)
    assert direct is not None
    assert direct.proxy == ""
    # A hand-edited file with a password in the proxy: no proxy, and the log does not repeat it.
    stored = json.loads((tmp_path / "settings.json").read_text(encoding="utf-8"))
    for written in ("http://desk:hunter2@proxy.corp:3128", "desk:hunter2@proxy.corp"):
        stored["profiles"][0]["proxy"] = written
        (tmp_path / "settings.json").write_text(json.dumps(stored), encoding="utf-8")
        with caplog.at_level(logging.WARNING):
            again = store.load().profile("Site")
        assert again is not None
        assert again.proxy == ""
    assert store.load_warning is None  # the rest of the file is kept
    assert "profiles[0].proxy holds a user name or password" in caplog.text
    assert "hunter2" not in caplog.text
    # A proxy of the wrong type is damage like any other.
    stored["profiles"][0]["proxy"] = 3128
    (tmp_path / "settings.json").write_text(json.dumps(stored), encoding="utf-8")
    assert store.load().profiles == []
    assert store.load_warning is not None


def test_the_plaintext_keyring_opt_in_is_off_unless_the_file_says_true(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    assert store.load().allow_plaintext_keyring is False
    store.save(Settings(allow_plaintext_keyring=True))
    assert store.load().allow_plaintext_keyring is True
    (tmp_path / "settings.json").write_text('{"allow_plaintext_keyring": "yes"}', encoding="utf-8")
    assert store.load().allow_plaintext_keyring is False
    assert store.load_warning is not None  # text where true or false belongs is damage
