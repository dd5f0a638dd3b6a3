"""Shared test set-up: an isolated data dir per test, and the real OS keyring when there is one."""

from __future__ import annotations

import os
import uuid

import pytest

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip for a developer who lacks something; in CI a missing piece is a failure."""
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own NOOJEE_DESK_HOME, so nothing touches a real installation."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("NOOJEE_DESK_HOME", str(home))
    # No machine-wide managed settings leak in (/etc/xdg on Linux): a test puts its own there.
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path_factory.mktemp("site-config")))
    return home


@pytest.fixture
def os_keyring() -> object:
    """The real OS keyring backend, checked with a throwaway entry (Secret Service on Linux)."""
    import keyring
    import keyring.errors

    backend = keyring.get_keyring()
    probe_service = f"noojee-desk-test-{uuid.uuid4().hex[:8]}"
    try:
        backend.set_password(probe_service, "probe", "x")
        ok = backend.get_password(probe_service, "probe") == "x"
        backend.delete_password(probe_service, "probe")
    except (keyring.errors.KeyringError, RuntimeError, OSError) as exc:
        ok = False
        why = f"{type(exc).__name__}: {exc}"
    else:
        why = "round trip returned a different value"
    if not ok:
        need(
            f"no working OS keyring ({why}). On Debian: apt install gnome-keyring dbus-x11, then "
            "run the tests with `python3 scripts/dev.py test` (it starts a private keyring)."
        )
    return backend
