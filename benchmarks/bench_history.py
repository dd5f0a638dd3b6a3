"""A year of history: the window over a queue file of 1,000,000 delivered leads.

Measures, with the real MainWindow (demo mode) on a copy of a prepared queue file:
  start() to the first rows shown, the longest loop stall in the first 3 s, the window's memory
  growth; a search by phone and by name (first results from the indexes, every result once the
  scan ends, stalls; and the scan alone, as the search was before the indexes); scrolling top to
  bottom a page at a time; sorting by status, by last change and back to queue order (the
  sorted query in its worker: time to the rows shown, stall, memory); exporting every lead to
  CSV with the window open (stall, memory).
A 5 ms precise timer on the Qt loop records every gap between its ticks (a "stall").
``--old N`` also times what the window did before (every lead of the profile read on the UI
thread, as ``outbox.leads(LeadQuery(profile=...))``) on an N-lead file, for comparison.

    python benchmarks/bench_history.py                       # 1,000,000 leads, offscreen
    python benchmarks/bench_history.py --count 200000 --old 200000
    python benchmarks/bench_history.py --no-export \\
        --source /tmp/nd-bench-search/outbox-1000000-v4.sqlite3   # schema 4: upgraded, indexed
    xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/bench_history.py --platform xcb \\
        --screenshot docs/screenshots/history-1m.png      # and history-1m-search.png

The file is built once (direct executemany into a fresh outbox, then indexed for the search as
queueing does) and cached under --cache, named by its schema version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TICK_MS = 5
PROFILE_BATCH = 10_000  # leads per batch: a year of pastes and files


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--cache", default="/tmp/nd-bench-history")
    parser.add_argument("--platform", default="offscreen")
    parser.add_argument("--old", type=int, default=0, help="also time the old full read")
    parser.add_argument("--screenshot", default="")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument(
        "--source", default="", help="open a copy of this queue file instead (e.g. of schema 4)"
    )
    return parser.parse_args(argv)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def build_file(path: Path, count: int, profile: str) -> None:
    """``count`` delivered leads in batches of 10,000 over the last year, straight into SQL."""
    from noojee_desk.core.delivery.outbox import Outbox

    if path.exists():
        return
    started = time.perf_counter()
    temp = path.with_suffix(".building")
    for leftover in temp.parent.glob(temp.name + "*"):
        leftover.unlink()
    Outbox(temp).close()  # the schema, at today's version
    import sqlite3

    db = sqlite3.connect(temp, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    year = 365 * 86400
    batches = (count + PROFILE_BATCH - 1) // PROFILE_BATCH
    db.execute("BEGIN")
    for b in range(batches):
        first = b * PROFILE_BATCH + 1
        last = min(count, first + PROFILE_BATCH - 1)
        when = now - year + year * b / max(1, batches)
        db.execute(
            "INSERT INTO batches (id, profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, source, batch_key, total, first_lead_id, last_lead_id, created_at) "
            "VALUES (?, ?, 3, 42, 101, 0, ?, NULL, ?, ?, ?, ?)",
            (b + 1, profile, f"leads-{b + 1:03d}.xlsx", last - first + 1, first, last, when),
        )

        def rows(first: int = first, last: int = last, when: float = when, b: int = b) -> Any:
            for i in range(first, last + 1):
                fields = json.dumps(
                    {
                        "FirstName": f"Person{i}",
                        "LastName": f"Family{i % 5000}",
                        "FirstPhone": f"04{i:08d}",
                        "Email": f"p{i}@example.com",
                    }
                )
                yield (
                    i, b + 1, i - first + 1, profile, fields, f"nd-{i:016d}", when, when + 5,
                    when + 5,
                )  # fmt: skip

        db.executemany(
            "INSERT INTO leads (id, batch_id, row_no, profile, template_id, campaign_id, "
            "allocation_id, allow_duplicates, fields, external_id, external_id_generated, state, "
            "attempts, next_attempt_at, unknown_outcome, last_code, last_message, sentence, fix, "
            "first_attempt_at, last_attempt_at, delivered_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 3, 42, 101, 0, ?, ?, 1, 'delivered', 1, 0, 0, 0, 'OK', "
            "'Added to the campaign.', '', ?8, ?8, ?9, ?7, ?9)",
            rows(),
        )
    db.execute(
        "INSERT INTO lead_counts (batch_id, state, profile, n) "
        "SELECT batch_id, state, profile, COUNT(*) FROM leads GROUP BY batch_id, state"
    )
    db.execute("COMMIT")
    db.close()
    with Outbox(temp) as outbox:  # the search's indexes, as queueing makes them
        while outbox.index_backlog(50_000):
            pass
    db = sqlite3.connect(temp, isolation_level=None)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    os.replace(temp, path)
    for leftover in temp.parent.glob(temp.name + "*"):
        leftover.unlink()
    print(f"built {count:,} leads in {time.perf_counter() - started:.1f} s: {path}")


class Ticker:
    """The gaps between ticks of a precise 5 ms timer on the Qt loop."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.ticks: list[float] = []

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def longest(self, start: float, end: float | None = None) -> float:
        end = time.perf_counter() if end is None else end
        worst = 0.0
        for before, after in zip(self.ticks, self.ticks[1:], strict=False):
            if start <= after and before <= end:
                worst = max(worst, (after - before) * 1000)
        return worst


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def until(condition: Any, limit: float = 120.0) -> None:
    deadline = time.perf_counter() + limit
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the window did not get there")
        await asyncio.sleep(0.002)


async def search(view: Any, text: str) -> None:
    """Type ``text`` into the queue's search and wait for every result."""
    if view.model.search == text.strip():
        return
    done = asyncio.Event()
    view.model.loaded.connect(done.set)
    view.search.setText(text)
    view._search_now()
    await asyncio.wait_for(done.wait(), 120)
    view.model.loaded.disconnect(done.set)
    await until(lambda: not view.model.scanning)


def prepare(args: argparse.Namespace) -> Path:
    """A data folder holding a copy of the cached queue file of ``--count`` leads."""
    from noojee_desk.core import paths
    from noojee_desk.core.delivery.schema import SCHEMA_VERSION
    from noojee_desk.core.profiles.settings import DEMO_PROFILE

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    source = cache / f"outbox-{args.count}-v{SCHEMA_VERSION}.sqlite3"
    if args.source:
        source = Path(args.source)
    else:
        build_file(source, args.count, DEMO_PROFILE)
    home = Path(tempfile.mkdtemp(prefix="bench-history-"))
    where = paths.resolve(str(home)).ensure()
    shutil.copyfile(source, where.outbox)
    return home


async def run(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from noojee_desk.app import build_desk, demo_factory
    from noojee_desk.ui.main_window import MainWindow

    home = prepare(args)
    ticker = Ticker()
    ticker.start()
    desk = build_desk(str(home), demo=demo_factory())
    window = MainWindow(desk)
    window.resize(1366, 740)
    window.show()
    await settle(0.2)
    memory_before = rss_mb()

    # -- start to first rows -------------------------------------------------------------
    started = time.perf_counter()
    await window.start(demo=True)
    model, view = window.queue_model, window.queue_view
    await until(lambda: model.rowCount() > 0 and not model.loading)
    view.table.viewport().repaint()  # the rows painted
    results["start_to_rows_s"] = time.perf_counter() - started
    results["backlog"] = window.desk.outbox.search_backlog()  # a file of schema 4: all of it
    results["rows"] = model.rowCount()
    await settle(max(0.0, 3.0 - (time.perf_counter() - started)))
    results["start_stall_ms"] = ticker.longest(started)
    results["memory_growth_mb"] = rss_mb() - memory_before

    # -- search ------------------------------------------------------------------------------
    phone = f"04{args.count - 7:08d}"
    searches = (
        ("phone", phone),
        ("phone typed with spaces", f"{phone[:4]} {phone[4:7]} {phone[7:]}"),
        ("name", "Family4242"),
        ("common text", "Person"),
        ("part of a word", "amily4242"),
    )
    first_finder = model._first  # the indexes' first results; without them: the scan alone
    for name, needle in searches:
        for key, first in ((name, first_finder), (f"{name} (scan alone)", None)):
            model._first = first
            await search(view, "")
            began = time.perf_counter()
            done = asyncio.Event()
            model.loaded.connect(done.set)
            view.search.setText(needle)
            view._search_now()
            await asyncio.wait_for(done.wait(), 120)
            model.loaded.disconnect(done.set)
            view.table.viewport().repaint()
            results[f"search_{key}_s"] = time.perf_counter() - began
            results[f"search_{key}_first"] = model.rowCount()
            if args.screenshot and key == "name" and model.scanning:
                shot = Path(args.screenshot).with_name(Path(args.screenshot).stem + "-search.png")
                window.grab().save(str(shot))  # the first results, the scan still running
                print(f"screenshot: {shot}")
            await until(lambda: not model.scanning)
            results[f"search_{key}_all_s"] = time.perf_counter() - began
            results[f"search_{key}_rows"] = model.rowCount()
            results[f"search_{key}_stall_ms"] = ticker.longest(began)
    model._first = first_finder
    await search(view, "")

    # -- scrolling, a page at a time (and jumps across the whole range) --------------------------
    bar = view.table.verticalScrollBar()
    bar.setValue(0)
    worst_step = 0.0
    began = time.perf_counter()
    steps = list(range(0, bar.maximum(), max(1, bar.maximum() // 300)))  # top to bottom
    steps += [bar.maximum() - i * bar.pageStep() for i in range(100)][::-1]  # the last pages
    for value in steps:
        step = time.perf_counter()
        bar.setValue(value)
        view.table.viewport().repaint()
        worst_step = max(worst_step, (time.perf_counter() - step) * 1000)
        await asyncio.sleep(0)
    results["scroll_steps"] = len(steps)
    results["scroll_worst_step_ms"] = worst_step
    results["scroll_stall_ms"] = ticker.longest(began)
    bar.setValue(bar.maximum())
    await settle(0.3)
    if args.screenshot:
        view.table.scrollToBottom()
        await settle(0.3)
        window.grab().save(args.screenshot)
        print(f"screenshot: {args.screenshot}")

    # -- sorted by status, by last change, and back to queue order (a click on each header) -----
    from noojee_desk.ui.queue.model import COL_ID, COL_STATUS, COL_UPDATED

    header = view.table.horizontalHeader()
    for name, column, order in (
        ("status", COL_STATUS, Qt.SortOrder.AscendingOrder),
        ("updated", COL_UPDATED, Qt.SortOrder.DescendingOrder),
        ("id", COL_ID, Qt.SortOrder.AscendingOrder),
    ):
        memory = rss_mb()
        began = time.perf_counter()
        header.setSortIndicator(column, order)  # as the click turns it
        view._header_clicked(column)
        await until(lambda name=name: model.order == name and not model.loading)
        view.table.viewport().repaint()
        results[f"sort_{name}_s"] = time.perf_counter() - began
        results[f"sort_{name}_stall_ms"] = ticker.longest(began)
        results[f"sort_{name}_memory_growth_mb"] = rss_mb() - memory
    await settle(0.3)

    # -- the search index's backlog (a file of schema 4), indexed while the window runs ---------
    if results["backlog"]:
        began = time.perf_counter()
        await until(lambda: window.desk.outbox.search_backlog() == 0, 600)
        results["backlog_done_s"] = time.perf_counter() - started
        results["backlog_stall_ms"] = ticker.longest(began)

    # -- export ----------------------------------------------------------------------------------
    if not args.no_export:
        out = home / "results.csv"
        memory = rss_mb()
        began = time.perf_counter()
        peak = memory

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_mb())
                await asyncio.sleep(0.05)

        watcher = asyncio.ensure_future(watch())
        await window._export(str(out), "csv")
        watcher.cancel()
        results["export_s"] = time.perf_counter() - began
        results["export_stall_ms"] = ticker.longest(began)
        results["export_memory_growth_mb"] = peak - memory
        results["export_mb"] = out.stat().st_size / 1e6

    await window.shutdown()
    window.close()
    QApplication.processEvents()
    _ = Qt
    shutil.rmtree(home, ignore_errors=True)


def old_full_read(args: argparse.Namespace) -> dict[str, float]:
    """What ``_load_queue`` did before: every lead of the profile read on the UI thread."""
    from noojee_desk.core.delivery.outbox import Outbox
    from noojee_desk.core.delivery.records import LeadQuery
    from noojee_desk.core.delivery.schema import SCHEMA_VERSION
    from noojee_desk.core.profiles.settings import DEMO_PROFILE

    source = Path(args.cache) / f"outbox-{args.old}-v{SCHEMA_VERSION}.sqlite3"
    build_file(source, args.old, DEMO_PROFILE)
    before = rss_mb()
    started = time.perf_counter()
    with Outbox(source) as outbox:
        leads = outbox.leads(LeadQuery(profile=DEMO_PROFILE))
    took = time.perf_counter() - started
    grown = rss_mb() - before
    del leads
    return {"old_read_s": took, "old_memory_mb": grown}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ["QT_QPA_PLATFORM"] = args.platform
    os.environ.setdefault("QT_API", "pyside6")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import PySide6  # noqa: F401  (before qasync, which then uses this binding)
    import qasync
    from PySide6.QtWidgets import QApplication

    from noojee_desk.app import MainThreadCollector

    app = QApplication.instance() or QApplication([])
    collector = MainThreadCollector(app)  # garbage is collected as in the app
    results: dict[str, Any] = {}
    with qasync.QEventLoop(app) as loop:
        loop.run_until_complete(run(args, results))
    collector.stop()
    old = old_full_read(args) if args.old else {}

    command = "python benchmarks/bench_history.py " + " ".join(argv)
    n = results["rows"]
    print(f"\n{n:,} delivered leads in the open profile ({command.strip()})")
    lines = [
        ("start() to first rows shown", f"{results['start_to_rows_s']:.2f} s", "<= 0.5 s"),
        ("longest stall, first 3 s", f"{results['start_stall_ms']:.0f} ms", "<= 50 ms"),
        ("window memory growth", f"{results['memory_growth_mb']:.0f} MB", "<= 60 MB"),
    ]
    searches = [k[7:-5] for k in results if k.startswith("search_") and k.endswith("_rows")]
    for name in searches:
        lines.append(
            (
                f"search, {name}: first {results[f'search_{name}_first']:,} rows shown",
                f"{results[f'search_{name}_s'] * 1000:.0f} ms",
                "<= 200 ms",
            )
        )
        lines.append(
            (
                f"search, {name}: all {results[f'search_{name}_rows']:,} rows; longest stall",
                f"{results[f'search_{name}_all_s'] * 1000:.0f} ms",
                f"{results[f'search_{name}_stall_ms']:.0f} ms (<= 50 ms)",
            )
        )
    lines.append(
        (f"scroll top to bottom ({results['scroll_steps']} steps): worst step",
         f"{results['scroll_worst_step_ms']:.0f} ms", "<= 50 ms")
    )  # fmt: skip
    lines.append(("scroll: longest stall", f"{results['scroll_stall_ms']:.0f} ms", "<= 50 ms"))
    for name, label in (("status", "by status"), ("updated", "by last change"), ("id", "back")):
        lines.append(
            (f"sort {label}: rows shown; longest stall, memory growth",
             f"{results[f'sort_{name}_s']:.2f} s",
             f"{results[f'sort_{name}_stall_ms']:.0f} ms (<= 50 ms), "
             f"{results[f'sort_{name}_memory_growth_mb']:+.0f} MB")
        )  # fmt: skip
    if "backlog_done_s" in results:
        lines.append(
            (f"search index backlog ({results['backlog']:,} leads): done after start",
             f"{results['backlog_done_s']:.0f} s",
             f"stall {results['backlog_stall_ms']:.0f} ms (<= 50 ms)")
        )  # fmt: skip
    if "export_s" in results:
        lines.append(
            (f"export CSV ({results['export_mb']:.0f} MB)", f"{results['export_s']:.1f} s", "")
        )
        lines.append(("export: longest stall", f"{results['export_stall_ms']:.0f} ms", "<= 100 ms"))
        lines.append(
            ("export: memory growth", f"{results['export_memory_growth_mb']:.0f} MB", "flat")
        )
    if old:
        lines.append(
            (f"before: full read of {args.old:,} on the UI thread", f"{old['old_read_s']:.2f} s",
             f"{old['old_memory_mb']:.0f} MB")
        )  # fmt: skip
    width = max(len(a) for a, _, _ in lines)
    for label, value, target in lines:
        print(f"  {label:<{width}}  {value:>9}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
