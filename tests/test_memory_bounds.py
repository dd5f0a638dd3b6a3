"""What a server or a file can make us hold: run in a child process limited to 1.5 GB of address
space, an answer that never ends and a workbook with cells at its two far corners each end with
a clear message, well within the limit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from noojee_desk.core.leads import spreadsheets

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="address-space limits are set the Linux way"
)

LIMIT = 1536 * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent

PRELUDE = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({LIMIT}, {LIMIT}))
def peak_mb():
    # This process's own peak (VmHWM): ru_maxrss keeps the parent's peak across the exec that
    # started it, so it would report the size of the test run, not of this child.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
"""


def _limited_argv(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args]


def _env() -> dict[str, str]:
    # Few malloc arenas: each thread's arena reserves address space it never uses.
    return dict(os.environ, MALLOC_ARENA_MAX="2", PYTHONPATH=str(ROOT))


def run_limited(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child process under the address-space limit."""
    argv = _limited_argv(code, *args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env())


def limited_process(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _limited_argv(code, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def test_a_childs_peak_is_its_own_not_the_test_runs(tmp_path: Path) -> None:
    """The bounds below are about the child alone, however big the test run has grown."""
    held = bytearray(300 * 1024 * 1024)
    held[::4096] = b"\x01" * len(held[::4096])  # resident, not only reserved
    result = run_limited("print(peak_mb())")
    del held
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) < 100, result.stdout


class EndlessServer:
    """An HTTP server on 127.0.0.1 whose every answer streams forever; counts what it sent."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sent = 0
        self.posts = 0  # insert calls answered
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readline()
            if first.startswith(b"POST"):
                self.posts += 1
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b'{"code": 0, "message": "' + b"x" * 65536
            framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            while True:
                writer.write(framed)
                self.sent += len(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()

    def __enter__(self) -> EndlessServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def endless() -> Iterator[EndlessServer]:
    with EndlessServer() as server:
        yield server


def test_an_endless_answer_ends_the_call_with_a_clear_outcome_in_bounded_memory(
    endless: EndlessServer,
) -> None:
    result = run_limited(
        """
        import asyncio, json
        from noojee_desk.core.delivery.api import NoojeeClient, ApiError

        async def main():
            async with NoojeeClient(sys.argv[1], "endless-key") as client:
                outcome = await client.insert_lead(3, 42, 101, {"FirstPhone": "0412000001"})
                try:
                    await client.list_templates()
                    listed = "no error"
                except ApiError as exc:
                    listed = exc.outcome.kind.value + ": " + exc.outcome.sentence
            return outcome, listed

        outcome, listed = asyncio.run(main())
        print(json.dumps({"kind": outcome.kind.value, "sentence": outcome.sentence,
                          "listed": listed, "peak": peak_mb()}))
        """,
        f"http://127.0.0.1:{endless.port}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["kind"] == "unknown"
    assert "longer than 64 KB" in found["sentence"]
    assert found["listed"].startswith("retry_later: ")
    assert "longer than 8 MB" in found["listed"]
    assert found["peak"] < 400, found


def test_send_against_an_endless_answer_reports_and_stays_small(
    endless: EndlessServer, tmp_path: Path
) -> None:
    """``send`` retries a lead whose answer may have landed; stopped with Ctrl+C, it reports
    the row with the reason, and it never held more than a few answers' limits."""
    leads = tmp_path / "leads.csv"
    leads.write_text("Name,FirstPhone\nAnn,0412000001\n", encoding="utf-8")
    code = """
        import os
        from noojee_desk import send
        os.environ[send.KEY_ENV] = "endless-key"
        code = send.main(sys.argv[1:])
        print("PEAK", peak_mb())
        print("EXIT", code)
        """
    argv = [str(leads), "--server", f"http://127.0.0.1:{endless.port}", "--json"]
    argv += ["--template", "3", "--campaign", "42", "--allocation", "101"]
    argv += ["--data-dir", str(tmp_path / "data"), "--retry-scale", "0.01"]
    proc = limited_process(code, *argv)
    try:
        deadline = time.monotonic() + 90
        while endless.posts < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "send never retried"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = out.strip().splitlines()
    assert lines[-1:] == ["EXIT 3"], out[-2000:] + err[-3000:]
    peak = int(lines[-2].split()[1])
    assert peak < 500, peak
    rows = [json.loads(line) for line in lines[:-2] if line.startswith("{")]
    (row,) = [r for r in rows if "row" in r]
    assert row["status"] == "pending", row
    assert "longer than 64 KB" in row["message"], row
    assert "endless-key" not in out + err


def _far_cells(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"] = "Name"
    sheet["XFD1048576"] = "far away"
    book.save(path)
    return path


def test_the_far_cell_workbook_is_refused_clearly_in_bounded_memory(tmp_path: Path) -> None:
    path = _far_cells(tmp_path / "far.xlsx")
    assert path.stat().st_size < 20_000
    result = run_limited(
        """
        import json
        from noojee_desk.core.leads.spreadsheets import read_file
        table = read_file(sys.argv[1])
        print(json.dumps({"rows": len(table.rows),
                          "problems": [p.message for p in table.problems],
                          "peak": peak_mb()}))
        """,
        str(path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["rows"] == 0
    (message,) = found["problems"]
    assert "too big" in message
    assert "XFD" in message
    assert f"{spreadsheets.MAX_COLUMNS:,}" in message
    assert found["peak"] < 400, found


def test_a_sheet_within_the_column_cap_but_past_the_cell_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = openpyxl.Workbook()
    for row in range(1, 60):
        book.active.append([f"r{row}c{col}" for col in range(1, 11)])
    book.save(tmp_path / "wide.xlsx")
    monkeypatch.setattr(spreadsheets, "MAX_CELLS", 500)
    table = spreadsheets.read_file(tmp_path / "wide.xlsx")
    assert table.rows == []
    (problem,) = table.problems
    assert "too big" in problem.message
    assert "500" in problem.message


def test_trailing_empty_cells_and_rows_are_trimmed(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "FirstPhone"])
    sheet.append(["Ann", "0412000001"])
    sheet["Z200"] = ""
    sheet["C2"] = "   "
    sheet["AB5000"] = None
    sheet.cell(9000, 900).value = " "
    book.save(tmp_path / "trailing.xlsx")
    table = spreadsheets.read_file(tmp_path / "trailing.xlsx")
    assert table.rows == [["Name", "FirstPhone"], ["Ann", "0412000001"]]
    assert table.problems == []


def test_every_could_not_be_read_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = openpyxl.Workbook()
    book.active.append(["Name"])
    book.save(tmp_path / "ok.xlsx")
    (tmp_path / "ok.csv").write_text("Name\nAnn\n", encoding="utf-8")

    def no_memory(*_args: object) -> object:
        raise MemoryError

    monkeypatch.setattr(spreadsheets, "_sheet_rows", no_memory)
    monkeypatch.setattr(spreadsheets, "decode_text", no_memory)
    for name in ("ok.xlsx", "ok.csv"):
        (problem,) = spreadsheets.read_file(tmp_path / name).problems
        assert "could not be read: it is too big" in problem.message
        assert not problem.message.endswith(": .")

    def empty_error(*_args: object) -> object:
        raise ValueError

    monkeypatch.setattr(spreadsheets, "decode_text", empty_error)
    (problem,) = spreadsheets.read_file(tmp_path / "ok.csv").problems
    assert problem.message.endswith("could not be read: ValueError.")


def _gzip_bomb(megabytes: int) -> bytes:
    """A gzip body that inflates to ``megabytes`` MB of one JSON string, made in milliseconds:
    after a full flush the compressor starts afresh, so each megabyte compresses the same.
    (No trailer: nothing that reads it within bounds gets that far.)"""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = packer.compress(b'{"code": 0, "message": "') + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(b"x" * (1024 * 1024)) + packer.flush(zlib.Z_FULL_FLUSH)
    return head + block * megabytes


class BombServer(EndlessServer):
    """An HTTP server on 127.0.0.1 whose every answer is a gzip bomb."""

    def __init__(self, megabytes: int) -> None:
        super().__init__()
        self.body = _gzip_bomb(megabytes)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readline()
            if first.startswith(b"POST"):
                self.posts += 1
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(self.body)
            )
            writer.write(self.body)
            self.sent += len(self.body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def test_a_gzip_bomb_from_a_real_server_is_inflated_only_to_the_limit() -> None:
    """2 GB inflated from 2 MB on the wire, past the child's 1.5 GB of address space: the
    insert's answer is cut at 64 KB and the list's at 8 MB as they are inflated."""
    with BombServer(2048) as server:
        assert len(server.body) < 3 * 1024 * 1024
        result = run_limited(
            """
            import asyncio, json, tracemalloc
            from noojee_desk.core.delivery.api import NoojeeClient, ApiError

            async def main():
                async with NoojeeClient(sys.argv[1], "bomb-key") as client:
                    outcome = await client.insert_lead(3, 42, 101, {"FirstPhone": "0412000001"})
                    try:
                        await client.list_templates()
                        listed = "no error"
                    except ApiError as exc:
                        listed = exc.outcome.kind.value + ": " + exc.outcome.sentence
                return outcome, listed

            tracemalloc.start()
            outcome, listed = asyncio.run(main())
            held = tracemalloc.get_traced_memory()[1] // (1024 * 1024)
            print(json.dumps({"kind": outcome.kind.value, "sentence": outcome.sentence,
                              "listed": listed, "peak": peak_mb(), "held": held}))
            """,
            f"http://127.0.0.1:{server.port}",
        )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["kind"] == "unknown", found
    assert "longer than 64 KB" in found["sentence"]
    assert found["listed"].startswith("retry_later: ")
    assert "longer than 8 MB" in found["listed"]
    # Python's own allocations: inflated a network read (64 KB) at a time, over 140 MB
    assert found["held"] < 48, found
    assert found["peak"] < 400, found


READ_IN_CHILD = """
    import json
    from noojee_desk.core.leads.spreadsheets import read_file
    table = read_file(sys.argv[1])
    print(json.dumps({"rows": len(table.rows),
                      "problems": [p.message for p in table.problems],
                      "peak": peak_mb()}))
    """


def test_a_300_mb_csv_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"Name,FirstPhone\n" + b"Ann,0412000001\n" * 1000)
        handle.truncate(300 * 1024 * 1024)  # sparse: 300 MB in a moment, no disk used
    result = run_limited(READ_IN_CHILD, str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["rows"] == 0
    (message,) = found["problems"]
    assert message.startswith("huge.csv is too big to import: it is 300 MB; at most 100 MB")
    assert "Split it" in message
    assert found["peak"] < 150, found


def test_a_text_file_whose_size_lies_is_read_only_up_to_the_cap() -> None:
    """A device that never ends (its size says 0): read a megabyte at a time, refused at the
    cap, never read to the end of memory."""
    result = run_limited(READ_IN_CHILD, "/dev/zero")
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["rows"] == 0
    (message,) = found["problems"]
    assert message.startswith("zero is too big to import: it is over 100 MB"), message
    assert found["peak"] < 400, found


def test_a_csv_past_the_row_cap_is_refused_whole_and_one_within_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spreadsheets, "MAX_TEXT_ROWS", 100)
    monkeypatch.setattr(spreadsheets, "_CHUNK", 64)  # the cap is checked as the file comes
    lines = ["Name,FirstPhone"] + [f"Lead {n},04120{n:05d}" for n in range(99)]
    (tmp_path / "fits.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(spreadsheets.read_file(tmp_path / "fits.csv").rows) == 100
    lines.append("Lead 100,0412000100")
    (tmp_path / "over.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    table = spreadsheets.read_file(tmp_path / "over.csv")
    assert table.rows == []
    (problem,) = table.problems
    assert problem.message.startswith("over.csv is too big to import: it has over 100 rows")
    assert "at most 100 rows can be read" in problem.message


def test_a_csv_past_the_cell_cap_is_refused_before_any_cell_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spreadsheets, "MAX_CELLS", 1000)
    (tmp_path / "wide.tsv").write_text(("x\t" * 600 + "\n") * 2, encoding="utf-8")
    made: list[object] = []
    monkeypatch.setattr(spreadsheets, "parse_delimited", lambda *a: made.append(a))
    table = spreadsheets.read_file(tmp_path / "wide.tsv")
    assert made == []
    (problem,) = table.problems
    assert "too big to import: more than 1,000 cells" in problem.message


def test_send_refuses_a_300_mb_csv_without_reading_it_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"Name,FirstPhone\nAnn,0412000001\n")
        handle.truncate(300 * 1024 * 1024)  # sparse
    code = """
        import os
        from noojee_desk import send
        os.environ[send.KEY_ENV] = "some-key"
        code = send.main(sys.argv[1:])
        print("PEAK", peak_mb())
        print("EXIT", code)
        """
    argv = [str(path), "--server", "http://127.0.0.1:9", "--dry-run"]
    argv += ["--template", "3", "--campaign", "42", "--allocation", "101"]
    argv += ["--data-dir", str(tmp_path / "data")]
    result = run_limited(code, *argv)
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"EXIT {2}", result.stdout + result.stderr[-3000:]
    assert "huge.csv is too big to import: it is 300 MB; at most 100 MB" in result.stderr
    assert int(lines[-2].split()[1]) < 150, lines
