"""The standalone emulator as a child process that can be killed and started again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


class SimProcess:
    """The standalone emulator (``noojee-desk sim``) as a child process that can be killed."""

    def __init__(self, state: Path, *args: str) -> None:
        self.state_file = state
        self.args = list(args)
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "noojee_desk", "sim", "--port", str(self.port)]
        argv += ["--state", str(self.state_file), *self.args]
        deadline = time.monotonic() + 15
        while True:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith("listening on "):
                break
            self.proc.wait()
            # The port of the killed process can take a moment to be free again.
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.1)
        self.port = int(line.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/__sim/state", timeout=10).json()

    def post(self, route: str, payload: dict[str, Any]) -> None:
        httpx.post(f"{self.url}/__sim/{route}", json=payload, timeout=10).raise_for_status()

    def lead_count(self) -> int:
        try:
            return int(
                httpx.get(f"{self.url}/__sim/state?leads=0", timeout=10).json()["lead_count"]
            )
        except httpx.HTTPError:
            return -1


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    made: list[SimProcess] = []

    def make(*args: str) -> SimProcess:
        sim = SimProcess(tmp_path / f"pbx-{len(made)}.json", *args)
        sim.start()
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.stop()


def make_file(path: Path, count: int) -> dict[int, str]:
    """A CSV of ``count`` rows; returns what each data row must become (status or code)."""
    expected: dict[int, str] = {}
    lines = ["Name,FirstPhone,njContactHours"]
    for row in range(1, count + 1):
        if row % 50 == 7:
            lines.append(f"No Phone {row},,")
            expected[row] = "invalid"
        elif row % 50 == 21:
            lines.append(f"Do Not Call {row},0299999999,")
            expected[row] = "104"
        elif row % 50 == 33:
            lines.append(f"Bad Hours {row},0415{row:06d},Someday")
            expected[row] = "111"
        else:
            lines.append(f"Person {row},0414{row:06d},")
            expected[row] = "delivered"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return expected
