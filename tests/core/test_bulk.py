"""Bulk-work rules: the collector paused, the GIL handed over often, big jobs frozen."""

from __future__ import annotations

import gc
import sys

import pytest

from noojee_desk.core import bulk


def test_worker_jobs_nest_and_restore_the_switch_interval() -> None:
    interval = sys.getswitchinterval()
    was_enabled = gc.isenabled()
    with bulk.worker_job():
        assert sys.getswitchinterval() == pytest.approx(min(interval, bulk.BUSY_SWITCH_INTERVAL))
        assert bulk.gc_paused()
        assert not gc.isenabled()
        with bulk.worker_job():
            assert bulk.gc_paused()
        # The outer job still runs: the rules stay.
        assert sys.getswitchinterval() == pytest.approx(min(interval, bulk.BUSY_SWITCH_INTERVAL))
        assert bulk.gc_paused()
    assert sys.getswitchinterval() == interval
    assert not bulk.gc_paused()
    assert gc.isenabled() == was_enabled


def test_a_job_that_made_many_objects_freezes_them() -> None:
    before = gc.get_freeze_count()
    try:
        with bulk.worker_job():
            rows = [[str(i)] for i in range(bulk.FREEZE_AFTER * 2)]
        assert gc.get_freeze_count() >= before + len(rows)
    finally:
        gc.unfreeze()


def test_a_small_job_leaves_its_objects_to_the_collector() -> None:
    gc.collect()  # the counts start from nothing
    before = gc.get_freeze_count()
    with bulk.worker_job():
        rows = [[i] for i in range(10)]
    assert rows[-1] == [9]
    assert gc.get_freeze_count() == before


def test_release_empties_a_list_in_slices() -> None:
    items = list(range(12_345))
    bulk.release(items, step=1_000)
    assert items == []
