"""The files and folders the app makes are private to the user, whatever the umask."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from noojee_desk.core import logs
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.files import atomic_write
from noojee_desk.core.paths import resolve
from noojee_desk.core.profiles.settings import Settings, SettingsStore

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 000: whatever the app gets right is its own doing."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_folders_settings_and_queue_files_are_private(tmp_path: Path, open_umask: None) -> None:
    paths = resolve(tmp_path / "home").ensure()
    for folder in (tmp_path / "home", paths.data, paths.config, paths.logs):
        assert mode(folder) == 0o700, folder
    SettingsStore(paths.settings).save(Settings())
    assert mode(paths.settings) == 0o600
    with Outbox(paths.outbox) as box:
        box.lock_profile("Prod").acquire()
        made = [p for p in paths.data.iterdir() if p.name.startswith("outbox.sqlite3")]
        assert {p.name.rsplit(".", 1)[-1] for p in made} >= {
            "sqlite3",
            "sqlite3-wal",
            "sqlite3-shm",
        }
        assert any(p.name.endswith(".lock") for p in made)
        for path in made:
            assert mode(path) == 0o600, path.name


def test_folders_from_before_are_made_private(tmp_path: Path) -> None:
    paths = resolve(tmp_path / "home")
    for folder in (paths.data, paths.config, paths.logs):
        folder.mkdir(parents=True)
        folder.chmod(0o755)
    paths.ensure()
    assert {mode(f) for f in (paths.data, paths.config, paths.logs)} == {0o700}


def test_a_queue_file_from_before_loses_group_and_other_access(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    path.chmod(0o644)
    Outbox(path).close()
    assert mode(path) == 0o600


def test_export_temp_files_and_new_folders_are_private(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "new" / "export.csv"
    with atomic_write(target, "w", encoding="utf-8") as stream:
        temp = Path(stream.name)
        assert mode(temp) == 0o600
        stream.write("a,b\n")
    assert mode(target.parent) == 0o700
    assert mode(target) == 0o600


def test_log_files_are_private_after_a_rotation_too(
    tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file = tmp_path / "logs" / "noojee-desk.log"
    root = logging.getLogger()
    # An earlier test in this process may have set up the app's log already: start without it.
    others = [h for h in root.handlers if not getattr(h, "_noojee_desk", False)]
    monkeypatch.setattr(root, "handlers", others)
    before = list(root.handlers)
    logs.setup(log_file)
    added = [h for h in root.handlers if h not in before]
    try:
        assert len(added) == 1
        handler = added[0]
        assert isinstance(handler, logging.handlers.RotatingFileHandler)
        assert mode(log_file.parent) == 0o700
        assert mode(log_file) == 0o600
        handler.doRollover()
        assert mode(log_file) == 0o600
        assert mode(log_file.with_name("noojee-desk.log.1")) == 0o600
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()
