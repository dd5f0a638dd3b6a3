"""The window on a queue file of the previous release (schema 4): it opens, indexes the old leads
for the search in the background, and its search box finds them before and after, saying while
the rest of a search is still being looked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.desks import make_desk
from helpers.queue_files import queue_file_at
from helpers.waits import until
from helpers.windows import close_window
from pytestqt.qtbot import QtBot

from noojee_desk.core import paths
from noojee_desk.core.delivery.records import LeadQuery
from noojee_desk.core.profiles.settings import DEMO_PROFILE
from noojee_desk.ui.main_window import MainWindow

LEADS = 3000


def schema_4_queue(home: Path) -> None:
    """The demo profile's delivered leads in a file as the previous release left it."""
    path = paths.resolve(str(home)).ensure().outbox
    db = queue_file_at(path, 4)
    db.execute(
        "INSERT INTO batches (id, profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, source, total, first_lead_id, last_lead_id, created_at) "
        f"VALUES (1, ?, 3, 42, 101, 0, 'old.xlsx', {LEADS}, 1, {LEADS}, 0)",
        (DEMO_PROFILE,),
    )
    db.executemany(
        "INSERT INTO leads (id, batch_id, profile, template_id, campaign_id, allocation_id, "
        "allow_duplicates, fields, external_id, external_id_generated, state, "
        "next_attempt_at, unknown_outcome, created_at, updated_at, delivered_at) VALUES "
        "(?, 1, ?, 3, 42, 101, 0, ?, ?, 1, 'delivered', 0, 0, 0, 0, 0)",
        (
            (i, DEMO_PROFILE, f'{{"Name": "Old{i} Smith", "FirstPhone": "0400 {i:06d}"}}', f"o{i}")
            for i in range(1, LEADS + 1)
        ),
    )
    db.execute(
        "INSERT INTO lead_counts (batch_id, state, profile, n) "
        "SELECT batch_id, state, profile, COUNT(*) FROM leads GROUP BY batch_id, state"
    )
    db.close()


async def search(window: MainWindow, text: str, said: list[bool]) -> list[int]:
    """Types ``text`` and waits for every result; ``said``: what "Searching messages…" did."""
    view, model = window.queue_view, window.queue_model
    model.searching.connect(said.append)
    view.search.setText(text)
    view._search_now()
    await until(lambda: not model.loading and not model.scanning, what="the search")
    model.searching.disconnect(said.append)
    assert not view.searching.isVisible()
    return [model.id_at(row) for row in range(model.rowCount())]


@pytest.mark.asyncio
async def test_an_old_queue_file_is_searchable_at_once_and_indexed_meanwhile(
    tmp_path: Path, qtbot: QtBot
) -> None:
    home = tmp_path / "home"
    schema_4_queue(home)
    window = MainWindow(make_desk(home))
    window.show()
    try:
        await window.start(demo=True)
        await until(lambda: window.queue_model.rowCount() == LEADS, what="the old leads")
        said: list[bool] = []
        assert await search(window, "0400 001 234", said) == [1234]  # the scan, or the index
        assert await search(window, "Old2345", said) == [2345]
        await until(lambda: window.desk.outbox.search_backlog() == 0, what="the backlog", limit=30)
        assert window.desk.outbox.schema_version == 5
        indexed = LeadQuery(profile=DEMO_PROFILE, search="Old1234")
        assert list(window.desk.outbox.first_ids(indexed, scan_for=0)) == [1234]
        assert await search(window, "mith", said) == list(range(1, LEADS + 1))
        assert await search(window, "400 001 234", said) == [1234]
        assert said == [True, False] * 4  # each search said so while its scan ran
    finally:
        await close_window(window)
