"""The settings file: round trip, damaged files set aside, unsaveable folder reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from noojee_desk.core.profiles.settings import (
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


def test_wrong_types_fall_back_per_field(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    raw = {
        "version": 1,
        "region": 5,
        "day_first": False,
        "profiles": [
            {"name": "A", "template_id": "12", "templates": {"items": [[1, "x"], ["bad"]]}},
            {"no": "name"},
            "junk",
        ],
        "active_profile": "missing",
    }
    path.write_text(json.dumps(raw), encoding="utf-8")
    settings = SettingsStore(path).load()
    assert settings.region == "AU"
    assert settings.day_first is False
    assert [p.name for p in settings.profiles] == ["A"]
    assert settings.profiles[0].template_id == 12
    assert settings.profiles[0].templates.items == [(1, "x")]
    assert settings.active_profile == "A"


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
