"""Managed settings on Linux: a machine-wide file in $XDG_CONFIG_DIRS, user settings over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.memory_keyring import MemoryKeyring

from noojee_desk.core import paths
from noojee_desk.core.delivery.api import ConfigError
from noojee_desk.core.desk import Desk
from noojee_desk.core.profiles import managed
from noojee_desk.core.profiles.secrets import KeyStore
from noojee_desk.core.profiles.settings import Profile, SettingsStore

EXAMPLE: dict[str, Any] = {
    "version": 1,
    "connections": [
        {
            "name": "Head office",
            "server_url": "https://pbx.example.com",
            "ca_bundle": "/etc/ssl/certs/example-ca.pem",
            "timezone": "Australia/Perth",
            "template_id": 7,
            "campaign_id": 70,
            "allocation_id": 700,
        }
    ],
    "active_connection": "Head office",
    "checking": {"region": "NZ", "phone_format": "e164", "strict_ranges": True},
    "locked": ["server_url", "ca_bundle", "region"],
    "allow_demo": False,
}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two folders in $XDG_CONFIG_DIRS, as a Linux desk has (/etc/xdg and another)."""
    first, second = tmp_path / "xdg1", tmp_path / "xdg2"
    first.mkdir()
    second.mkdir()
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{first}:{second}")
    return second


def put(site: Path, content: dict[str, Any] | bytes) -> Path:
    folder = site / "Noojee Desk"
    folder.mkdir(exist_ok=True)
    path = folder / "managed.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def desk_for(home: Path, keys: KeyStore | None = None) -> Desk:
    where = paths.resolve(home).ensure()
    loaded = managed.load()
    return Desk(
        where,
        SettingsStore(where.settings, loaded.managed),
        keys or KeyStore(backend=MemoryKeyring()),
        managed=loaded,
    )


def write_user(home: Path, raw: dict[str, Any]) -> None:
    where = paths.resolve(home).ensure()
    where.settings.write_text(json.dumps(raw))


def test_found_in_any_xdg_config_dir(site: Path) -> None:
    path = put(site, EXAMPLE)
    loaded = managed.load()
    assert loaded.path == path
    assert not loaded.problem
    assert loaded.rules.connection("Head office") is not None
    assert managed.candidates()[0].parent.name == "Noojee Desk"


def test_a_fresh_user_gets_the_managed_connection_and_rules(site: Path, tmp_path: Path) -> None:
    put(site, EXAMPLE)
    desk = desk_for(tmp_path / "home")
    profile = desk.profile
    assert profile is not None
    assert profile.name == "Head office"
    assert profile.server_url == "https://pbx.example.com"
    assert profile.ca_bundle == "/etc/ssl/certs/example-ca.pem"
    assert profile.timezone == "Australia/Perth"
    assert (profile.template_id, profile.campaign_id, profile.allocation_id) == (7, 70, 700)
    assert (desk.settings.region, desk.settings.phone_format) == ("NZ", "e164")
    assert desk.validation_settings().region == "NZ"


def test_user_settings_layer_over_and_locks_win(site: Path, tmp_path: Path) -> None:
    put(site, EXAMPLE)
    home = tmp_path / "home"
    write_user(
        home,
        {
            "region": "GB",  # locked: the managed NZ wins
            "phone_format": "national",  # not locked: the user's own choice stays
            "profiles": [
                {
                    "name": "Head office",
                    "server_url": "https://elsewhere.example.net",  # locked
                    "ca_bundle": "",  # locked
                    "timezone": "Australia/Sydney",  # not locked: the user's
                    "template_id": 9,  # the user's own pick beats the default
                },
                {"name": "Mine", "server_url": "https://mine.example.org"},
            ],
            "active_profile": "Mine",
        },
    )
    desk = desk_for(home)
    office = desk.settings.profile("Head office")
    assert office is not None
    assert office.server_url == "https://pbx.example.com"
    assert office.ca_bundle == "/etc/ssl/certs/example-ca.pem"
    assert office.timezone == "Australia/Sydney"
    assert office.template_id == 9
    assert desk.settings.region == "NZ"
    assert desk.settings.phone_format == "national"
    assert desk.profile is not None
    assert desk.profile.name == "Mine"
    assert desk.is_locked("server_url", "Head office")
    assert not desk.is_locked("server_url", "Mine")  # the user's own connection is theirs
    assert not desk.is_locked("timezone", "Head office")
    assert desk.is_locked("region")
    assert not desk.is_locked("phone_format")


@pytest.mark.asyncio
async def test_a_locked_value_changed_in_the_app_is_not_saved(site: Path, tmp_path: Path) -> None:
    put(site, EXAMPLE)
    home = tmp_path / "home"
    desk = desk_for(home)
    changed = Profile("Head office", server_url="https://evil.example", timezone="Asia/Tokyo")
    desk.settings.region = "US"
    await desk.save_profile(changed, "the-key", session_only=False)
    saved = json.loads(paths.resolve(home).settings.read_text())
    office = next(p for p in saved["profiles"] if p["name"] == "Head office")
    assert office["server_url"] == "https://pbx.example.com"
    assert office["timezone"] == "Asia/Tokyo"  # unlocked: the person's change is kept
    assert saved["region"] == "NZ"
    assert "the-key" not in paths.resolve(home).settings.read_text()


@pytest.mark.asyncio
async def test_demo_turned_off(site: Path, tmp_path: Path) -> None:
    put(site, EXAMPLE)
    home = tmp_path / "home"
    write_user(
        home,
        {
            "profiles": [{"name": "Demo", "server_url": "http://127.0.0.1", "demo": True}],
            "active_profile": "Demo",
        },
    )
    desk = desk_for(home)
    assert not desk.demo_allowed
    assert desk.settings.profile("Demo") is None  # the earlier demo connection is gone
    assert desk.profile is not None
    assert desk.profile.name == "Head office"
    with pytest.raises(ConfigError, match="administrator"):
        desk.ensure_demo_profile()


def test_without_a_managed_file_nothing_changes(tmp_path: Path) -> None:
    desk = desk_for(tmp_path / "home")
    assert desk.managed.path is None
    assert not desk.managed.problem
    assert desk.demo_allowed
    assert desk.profile is None
    assert desk.settings.region == "AU"
    assert not desk.is_locked("region")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[]", "not a JSON object"),
        ({"connections": {"name": "x"}}, "not a list"),
        ({"connections": [{"name": "A", "server_url": "https://u:p@pbx.example.com"}]}, "password"),
        ({"connections": [{"name": "A", "server_url": "https://pbx.example?apiKey=1"}]}, "'?'"),
        ({"connections": [{"name": "A", "server_url": "http://pbx.example.com"}]}, "https"),
        ({"connections": [{"name": "A", "server_url": "https://p", "api_key": "k"}]}, "api_key"),
        ({"connections": [{"name": "A", "server_url": "https://p", "timezone": "Mars/B"}]}, "zone"),
        ({"connections": [{"name": "A", "server_url": "https://p", "template_id": "7"}]}, "whole"),
        ({"checking": {"region": "XX"}}, "country code"),
        ({"checking": {"phone_format": "morse"}}, "phone_format"),
        ({"checking": {"strict_ranges": "yes"}}, "strict_ranges"),
        ({"locked": ["everything"]}, "may lock"),
        ({"locked": ["region"]}, "which checking does not set"),
        ({"allow_demo": "no"}, "allow_demo"),
        ({"alow_demo": False}, "alow_demo"),
        ({"active_connection": "Nowhere"}, "active_connection"),
    ],
)  # fmt: skip
def test_a_damaged_managed_file_is_ignored_with_a_reason(
    site: Path, tmp_path: Path, content: dict[str, Any] | bytes, why: str
) -> None:
    path = put(site, content)
    write_user(tmp_path / "home", {"region": "GB"})
    desk = desk_for(tmp_path / "home")
    assert desk.managed.managed is None
    assert desk.managed.path == path
    assert why in desk.managed.problem
    assert str(path) in desk.managed.problem
    assert desk.settings.region == "GB"  # the user's own settings, as without a managed file
    assert desk.demo_allowed
    assert path.exists()  # never set aside or changed: it is not ours


def test_a_huge_managed_file_is_refused(site: Path) -> None:
    put(site, b'{"connections": [' + b" " * (managed.MAX_MANAGED_BYTES + 10) + b"]}")
    loaded = managed.load()
    assert loaded.managed is None
    assert "larger" in loaded.problem


def test_strict_ranges_is_accepted_and_locks_when_the_setting_exists(site: Path) -> None:
    put(site, {"checking": {"strict_ranges": False}, "locked": ["strict_ranges"]})
    loaded = managed.load()
    assert loaded.rules.checking == {"strict_ranges": False}
    assert loaded.rules.is_locked("strict_ranges")
    layered = loaded.rules.layer({"strict_ranges": True})
    assert layered["strict_ranges"] is False
