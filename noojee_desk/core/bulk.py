"""Bulk work on many small objects in worker threads: the collector paused, lists freed in parts."""

from __future__ import annotations

import gc
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
