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


def test_send_into_the_connection_the_app_has_open_is_delivered_by_the_app(
    tmp_path: Path,
) -> None:
    """Two real processes: the app (demo connection open, sending) and ``send --profile Demo``
    on the same data folder. The app's window delivers the leads within seconds (to its
    built-in PBX); ``send`` says who sends them, waits, reports every row and exits 0."""
    import json

    from noojee_desk.sim.server import SimThread

    home = tmp_path / "home"
    leads = tmp_path / "leads.csv"
    rows = [f"P{i},0413{i:06d},Town" for i in range(30)]
    leads.write_text("Name,FirstPhone,City\n" + "\n".join(rows) + "\n", encoding="utf-8")
    app = _start(home)
    try:
        _wait_for(lambda: "starting (data in" in _log(home), 60, "the window never started")
        _wait_for(lambda: resolve(home).outbox.exists(), 30, "the window opened no queue")
        time.sleep(2.0)  # its dispatcher holds the demo queue
        env = dict(os.environ, NOOJEE_API_KEY="demo-key")
        env.pop("NOOJEE_DESK_HOME", None)
        with SimThread() as pbx:  # `send` reads the template's fields here; it sends nothing
            argv = [sys.executable, "-m", "noojee_desk", "send", str(leads), "--server", pbx.url]
            argv += ["--template", "3", "--campaign", "42", "--allocation", "101"]
            argv += ["--profile", "Demo", "--data-dir", str(home), "--json"]
            started = time.monotonic()
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
            took = time.monotonic() - started
            on_pbx = pbx.state()["leads"]
        assert app.poll() is None
    finally:
        app.terminate()
        try:
            app.wait(15)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
    assert done.returncode == 0, done.stderr
    assert "is being sent by the Noojee Desk window (pid " in done.stderr
    *lines, last = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["delivered"] * 30
    assert last["summary"]["delivered"] == 30
    assert on_pbx == []  # the window sent them, not `send`
    assert took < 60
