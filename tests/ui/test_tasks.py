"""Tasks: work in a worker thread under the bulk rules, on the qasync loop."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from noojee_desk.core import bulk
from noojee_desk.ui.tasks import Tasks


@pytest.mark.asyncio
async def test_a_big_worker_job_moves_its_objects_out_of_the_collectors_way() -> None:
    tasks = Tasks()
    before = gc.get_freeze_count()
    rows = await tasks.in_worker(lambda: [[str(i)] for i in range(30_000)])
    try:
        assert gc.get_freeze_count() >= before + len(rows)
        small = await tasks.in_worker(lambda: [[1]])
        assert small == [[1]]
    finally:
        gc.unfreeze()


@pytest.mark.asyncio
async def test_in_worker_runs_off_the_loop_with_the_collector_paused() -> None:
    tasks = Tasks()
    interval = sys.getswitchinterval()

    def seen(a: int, b: int) -> tuple[bool, bool, float, int]:
        on_loop_thread = threading.current_thread() is threading.main_thread()
        return on_loop_thread, bulk.gc_paused(), sys.getswitchinterval(), a + b

    on_loop_thread, paused, during, total = await tasks.in_worker(seen, 2, 3)
    assert not on_loop_thread
    assert paused
    assert during == pytest.approx(min(interval, bulk.BUSY_SWITCH_INTERVAL))
    assert total == 5
    assert not bulk.gc_paused()
    assert sys.getswitchinterval() == interval


@pytest.mark.asyncio
async def test_a_failing_job_raises_and_restores_the_rules() -> None:
    tasks = Tasks()
    interval = sys.getswitchinterval()

    def fail() -> None:
        raise ValueError("broken file")

    with pytest.raises(ValueError, match="broken file"):
        await tasks.in_worker(fail)
    assert not bulk.gc_paused()
    assert sys.getswitchinterval() == interval
