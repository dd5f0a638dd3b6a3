"""What the search's indexes (schema 5) cost: queueing, the file's size, and upgrading a year.

* queueing 100,000 leads in one batch with the indexes and without them (the same run, taking
  turns), and the file's size after each;
* a queue file of schema 4 with N delivered leads (the previous release's): opening it (the
  upgrade), then indexing its backlog a chunk at a time as the window does (each chunk is one
  write; the window's sending waits for it), and the file's size before and after.

  python benchmarks/bench_search_index.py                  # 100,000 queued; 1,000,000 upgraded
  python benchmarks/bench_search_index.py --upgrade 200000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=100_000, help="leads queued in one batch")
    parser.add_argument("--upgrade", type=int, default=1_000_000, help="leads of the v4 file")
    parser.add_argument("--cache", default="/tmp/nd-bench-search")
    return parser.parse_args(argv)


def fields(i: int) -> dict[str, str]:
    return {
        "FirstName": f"Person{i}",
        "LastName": f"Family{i % 5000}",
        "FirstPhone": f"04{i:08d}",
        "Email": f"p{i}@example.com",
    }


def leads(count: int) -> list[Any]:
    from noojee_desk.core.delivery.records import LeadInput

    return [LeadInput(fields(i), frozenset({f"+614{i:08d}"}), i + 1) for i in range(count)]


def queue_once(folder: Path, batch: list[Any], indexed: bool) -> tuple[float, float]:
    from noojee_desk.core.delivery.outbox import Outbox
    from noojee_desk.core.delivery.records import Target

    path = folder / f"queue-{indexed}.sqlite3"
    for old in folder.glob(path.name + "*"):
        old.unlink()
    with Outbox(path) as outbox:
        if not indexed:
            outbox._index = lambda db, rows: None  # type: ignore[method-assign]
        started = time.perf_counter()
        outbox.enqueue("p", Target(3, 42, 101), batch, allow_duplicates=False, source="x")
        took = time.perf_counter() - started
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return took, path.stat().st_size / 1e6


def build_v4(path: Path, count: int) -> None:
    """A schema 4 file as the previous release left it: ``count`` delivered leads."""
    from noojee_desk.core.delivery.schema import MIGRATIONS, statements

    if path.exists():
        return
    temp = path.with_suffix(".building")
    temp.unlink(missing_ok=True)
    db = sqlite3.connect(temp, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.create_function("nd_content_key", 1, lambda text: text, deterministic=True)
    db.execute("BEGIN")
    for number in range(4):
        for statement in statements(MIGRATIONS[number]):
            db.execute(statement)
    db.execute("PRAGMA user_version = 4")
    per_batch = 10_000
    for b in range((count + per_batch - 1) // per_batch):
        first, last = b * per_batch + 1, min(count, (b + 1) * per_batch)
        db.execute(
            "INSERT INTO batches (id, profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, source, total, first_lead_id, last_lead_id, created_at) "
            "VALUES (?, 'Demo', 3, 42, 101, 0, 'x', ?, ?, ?, 0)",
            (b + 1, last - first + 1, first, last),
        )
        db.executemany(
            "INSERT INTO leads (id, batch_id, profile, template_id, campaign_id, allocation_id, "
            "allow_duplicates, fields, external_id, external_id_generated, state, "
            "next_attempt_at, unknown_outcome, created_at, updated_at) VALUES "
            "(?, ?, 'Demo', 3, 42, 101, 0, ?, ?, 1, 'delivered', 0, 0, 0, 0)",
            ((i, b + 1, json.dumps(fields(i)), f"nd-{i:016d}") for i in range(first, last + 1)),
        )
        db.executemany(
            "INSERT INTO lead_phones (phone, lead_id) VALUES (?, ?)",
            ((f"+614{i:08d}", i) for i in range(first, last + 1)),
        )
    db.execute(
        "INSERT INTO lead_counts (batch_id, state, profile, n) "
        "SELECT batch_id, state, profile, COUNT(*) FROM leads GROUP BY batch_id, state"
    )
    db.execute("COMMIT")
    db.close()
    os.replace(temp, path)


def upgrade(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    from noojee_desk.core.delivery.outbox import Outbox

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    source = cache / f"outbox-{args.upgrade}-v4.sqlite3"
    build_v4(source, args.upgrade)
    path = folder / "upgraded.sqlite3"
    shutil.copyfile(source, path)
    before = path.stat().st_size / 1e6
    started = time.perf_counter()
    outbox = Outbox(path)
    opened = time.perf_counter() - started
    chunks: list[float] = []
    started = time.perf_counter()
    left = outbox.search_backlog()
    while left:
        step = time.perf_counter()
        left = outbox.index_backlog()
        chunks.append(time.perf_counter() - step)
    indexed = time.perf_counter() - started
    outbox.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {
        "open_s": opened,
        "index_s": indexed,
        "chunks": len(chunks),
        "chunk_median_ms": statistics.median(chunks) * 1000,
        "chunk_max_ms": max(chunks) * 1000,
        "mb_before": before,
        "mb_after": path.stat().st_size / 1e6,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    folder = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        batch = leads(args.queue)
        runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for indexed in (False, True, False, True):
            runs[indexed].append(queue_once(folder, batch, indexed))
        figures = upgrade(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\npython benchmarks/bench_search_index.py {' '.join(argv)}".rstrip())
    for indexed, label in ((False, "without the search's indexes"), (True, "with them")):
        times = ", ".join(f"{t:.2f}" for t, _ in runs[indexed])
        size = runs[indexed][-1][1]
        print(f"  queue {args.queue:,} leads {label}: {times} s; file {size:.0f} MB")
    print(
        f"  a schema 4 file of {args.upgrade:,} leads ({figures['mb_before']:.0f} MB): opened "
        f"(upgraded) in {figures['open_s']:.2f} s; backlog indexed in {figures['index_s']:.1f} s "
        f"({figures['chunks']:.0f} writes, median {figures['chunk_median_ms']:.0f} ms, longest "
        f"{figures['chunk_max_ms']:.0f} ms); file {figures['mb_after']:.0f} MB after"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
