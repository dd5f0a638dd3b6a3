"""Bulk work on many small objects in worker threads: the collector paused, lists freed in parts,
the GIL handed over often."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # how many bulk jobs run now; whether the collector was on before them


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pauses Python's cycle collector during bulk work on many small objects (it would rescan
    them again and again and take a third of the time); it runs again afterwards."""
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


def gc_paused() -> bool:
    """Whether bulk work has paused the cycle collector (``paused_gc``) in some thread."""
    return _gc_pauses[0] > 0


#: Items per slice where a worker thread walks 100,000 rows in C (see ``release``).
SLICE = 5_000


def release(items: list[Any], step: int = SLICE) -> None:
    """Empties a big list a slice at a time.

    Freeing 100,000 dicts in one go is a single C call that holds the GIL for some 20 ms; a
    worker thread that does so holds up the UI thread as long. Slice by slice, it never does.
    """
    while items:
        del items[-step:]


# -- worker jobs -------------------------------------------------------------------------------

#: The GIL switch interval while bulk work runs in a worker thread (Python's default is 5 ms).
BUSY_SWITCH_INTERVAL = 0.0001
#: New objects after which a finished job freezes them rather than let a collection walk them
#: (a small job's few objects are collected as usual, cyclic garbage included). The 100,000
#: rows of a big paste are some 100,000 objects: a collection of them takes 50 ms or more.
FREEZE_AFTER = 10_000

_job_lock = threading.Lock()
_jobs = [0, 0.005]  # how many worker jobs run now; the switch interval before the first


@contextmanager
def worker_job() -> Iterator[None]:
    """Wraps a bulk job that a worker thread runs, so that the UI thread does not stall.

    Two things would: the GIL, which a worker busy in Python holds for up to the switch
    interval each time another thread asks for it (and painting asks often), so the interval
    is shorter meanwhile; and the cyclic garbage collector, which reading 100,000 rows triggers
    again and again, each time walking every object in the process with the GIL held (pauses of
    half a second). So collection is paused (``paused_gc``, shared with the lead-data code)
    until the work is done; after a big job the new objects, mostly long-lived rows and checks,
    are moved out of the collector's way (``gc.freeze``; they are still freed by reference
    counting as usual). Cyclic garbage that exists at that moment is frozen with them and never
    freed: a little memory, against a stall of 50 ms or more per collection.
    """
    with _job_lock:
        if _jobs[0] == 0:
            _jobs[1] = sys.getswitchinterval()
            sys.setswitchinterval(min(_jobs[1], BUSY_SWITCH_INTERVAL))
        _jobs[0] += 1
    with paused_gc():
        try:
            yield
        finally:
            with _job_lock:
                _jobs[0] -= 1
                last = _jobs[0] == 0
                if last:
                    sys.setswitchinterval(_jobs[1])
            if last and gc.get_count()[0] > FREEZE_AFTER:  # a collection now would stall
                gc.freeze()
