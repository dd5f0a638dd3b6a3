"""The installation self-test: the whole run as a person starts it, and each check on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from noojee_desk import selftest

CHECKS = (
    "Qt plugins",
    "keyring backends",
    "keyring round trip",
    "lead libraries",
    "network stack",
    "send one lead",
    "main window",
)


def run_self_test(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "noojee_desk", "--self-test", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def lines_of(output: str) -> dict[str, str]:
    """Check name -> its report line."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        for name in CHECKS:
            if line[6:].startswith(name):
                found[name] = line
    return found


@pytest.mark.keyring
def test_self_test_passes_and_leaves_the_data_folder_alone(
    os_keyring: object, isolated_home: Path, tmp_path: Path
) -> None:
    (isolated_home / "marker").write_text("mine")
    report = tmp_path / "report.txt"
    done = run_self_test(f"--report={report}")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = lines_of(done.stdout)
    assert set(lines) == set(CHECKS)
    assert all(line.startswith("PASS  ") for line in lines.values()), done.stdout
    assert done.stdout.splitlines()[0].startswith("Noojee Desk ")
    assert "self-test passed: 7 checks" in done.stdout.splitlines()[-1]
    assert report.read_text(encoding="utf-8") == done.stdout
    # The run used its own temporary folder: the person's data folder is untouched.
    assert sorted(p.name for p in isolated_home.iterdir()) == ["marker"]


def test_a_missing_keyring_fails_with_the_reason_and_the_other_checks_still_run() -> None:
    done = run_self_test(env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = lines_of(done.stdout)
    assert lines["keyring backends"].startswith("FAIL  ")
    assert "keyring.backends.fail.Keyring" in lines["keyring backends"]
    assert lines["keyring round trip"].startswith("FAIL  ")
    assert "no usable password store" in lines["keyring round trip"]
    for name in ("lead libraries", "network stack", "send one lead", "main window"):
        assert lines[name].startswith("PASS  "), lines[name]
    assert done.stdout.splitlines()[-1] == "self-test FAILED: 2 of 7 checks failed"


@pytest.mark.parametrize("args", [["--timeout", "0"], ["--timeout", "soon"], ["--bogus"]])
def test_bad_arguments_are_refused_without_running(args: list[str]) -> None:
    assert selftest.main(args) == 2


def test_an_unwritable_report_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert selftest.main([f"--report={blocker / 'report.txt'}"]) == 2


def test_the_temporary_home_is_removed_and_the_old_value_restored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOOJEE_DESK_HOME", str(tmp_path))
    with selftest._temporary_home(keep=False) as home:
        assert os.environ["NOOJEE_DESK_HOME"] == str(home)
        (home / "data").mkdir()
    assert not home.exists()
    assert os.environ["NOOJEE_DESK_HOME"] == str(tmp_path)


def _plugins(root: Path, files: dict[str, list[str]]) -> Path:
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).write_bytes(b"")
    return root


def test_qt_plugins_passes_with_offscreen_and_the_desktop_plugin(tmp_path: Path) -> None:
    root = _plugins(
        tmp_path,
        {"platforms": ["libqoffscreen.so", "libqxcb.so"], "imageformats": ["libqico.so"]},
    )
    check = selftest.qt_plugins([root], system="linux")
    assert check.ok, check.detail
    assert "xcb" in check.detail
    assert "ico" in check.detail


@pytest.mark.parametrize(
    ("system", "files", "missing"),
    [
        ("linux", ["libqoffscreen.so"], "xcb"),
        ("win32", ["qoffscreen.dll", "qminimal.dll"], "windows"),
        ("darwin", ["libqcocoa.dylib"], "offscreen"),
    ],
)
def test_qt_plugins_names_what_is_missing(
    tmp_path: Path, system: str, files: list[str], missing: str
) -> None:
    check = selftest.qt_plugins([_plugins(tmp_path, {"platforms": files})], system=system)
    assert not check.ok
    assert f"missing: {missing}" in check.detail
    assert str(tmp_path) in check.detail


def test_qt_plugins_without_any_plugin_folder(tmp_path: Path) -> None:
    check = selftest.qt_plugins([tmp_path / "nowhere"], system="win32")
    assert not check.ok
    assert "offscreen, windows" in check.detail


def test_keyring_backends_reports_why_the_system_store_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    monkeypatch.setattr(keyring, "get_keyring", FailKeyring)
    check = selftest.keyring_backends("win32")
    assert not check.ok
    assert "keyring.backends.fail.Keyring" in check.detail
    # Not on Windows: its backend cannot work, and the check says so in its own words.
    assert "Windows: RuntimeError" in check.detail


def test_lead_libraries(tmp_path: Path) -> None:
    check = selftest.lead_libraries(tmp_path)
    assert check.ok, check.detail
    assert "+61491570313" in check.detail


@pytest.mark.asyncio
async def test_one_lead_reaches_the_built_in_pbx(tmp_path: Path) -> None:
    check = await selftest.send_one_lead(tmp_path / "outbox.sqlite3", 20.0)
    assert check.ok, check.detail
    assert "delivered by the dispatcher (nd-" in check.detail


@pytest.mark.asyncio
async def test_a_dispatcher_that_cannot_run_fails_the_check_at_once(tmp_path: Path) -> None:
    from noojee_desk.core.delivery.outbox import Outbox

    path = tmp_path / "outbox.sqlite3"
    holder = Outbox(path)
    lock = holder.lock_profile(selftest.SELF_TEST_PROFILE)  # as if another window were sending
    lock.acquire()
    try:
        started = time.monotonic()
        check = await selftest._guard(
            "send one lead", lambda: selftest.send_one_lead(path, 20.0), False
        )
        assert time.monotonic() - started < 10  # not after the 20 s limit
    finally:
        lock.release()
        holder.close()
    assert not check.ok
    assert check.detail.startswith("OutboxBusy: Another Noojee Desk")


@pytest.mark.asyncio
async def test_network_stack_talks_http_to_the_emulator() -> None:
    check = await selftest.network_stack(20.0)
    assert check.ok, check.detail
    assert "5 templates" in check.detail


def test_an_app_that_cannot_load_is_a_failed_check_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "noojee_desk.app", None)  # importing it raises ImportError
    results = {check.name: check for check in selftest.run_checks(tmp_path, 20.0)}
    assert not results["main window"].ok
    assert results["main window"].detail.startswith("the app cannot start: ModuleNotFoundError")
    assert results["send one lead"].ok, results["send one lead"].detail
    assert results["lead libraries"].ok
