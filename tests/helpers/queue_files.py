"""Queue files as an earlier release made them, for the tests of their upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from noojee_desk.core.delivery.schema import MIGRATIONS, statements


def queue_file_at(path: Path, version: int) -> sqlite3.Connection:
    """A new queue file at schema ``version`` (its migrations only, as that release wrote it),
    open in autocommit for the test to fill; the caller closes it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.create_function("nd_content_key", 1, lambda text: text, deterministic=True)
    for number in range(version):
        for statement in statements(MIGRATIONS[number]):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    return db
