"""One window per data folder: real app processes, offscreen."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from noojee_desk.core.paths import resolve


def _start(home: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_API="pyside6")
    env.pop("NOOJEE_DESK_HOME", None)
    argv = [sys.executable, "-m", "noojee_desk", "--data-dir", str(home), "--demo"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _log(home: Path) -> str:
    path = resolve(home).log_file
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _wait_for(condition, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_second_launch_brings_the_first_window_forward_and_another_folder_runs(
    tmp_path: Path,
) -> None:
    home, other = tmp_path / "one", tmp_path / "two"
    first = _start(home)
    third: subprocess.Popen[bytes] | None = None
    try:
        _wait_for(lambda: "starting (data in" in _log(home), 60, "the first window never started")
        started = time.monotonic()
        second = _start(home)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err.decode()
        assert "already open on this data folder" in out.decode()
        assert time.monotonic() - started < 30
        _wait_for(
            lambda: "asked to show this window" in _log(home), 10, "the first window was not asked"
        )
        assert first.poll() is None
        third = _start(other)  # another data folder: side by side
        _wait_for(lambda: "starting (data in" in _log(other), 60, "another folder did not start")
        time.sleep(1.0)
        assert third.poll() is None
        assert first.poll() is None
    finally:
        for proc in (first, third):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    relaunch = _start(home)  # the first one ended (terminated): the folder is free again
    try:
        _wait_for(lambda: _log(home).count("starting (data in") >= 2, 60, "no relaunch")
        assert relaunch.poll() is None
    finally:
        relaunch.terminate()
        relaunch.wait(15)
