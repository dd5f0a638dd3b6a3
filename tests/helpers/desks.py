"""Real desks on a temporary folder: settings file, key store, SQLite outbox, demo PBX.

``make_desk`` builds the desk the app builds (``noojee_desk.app.build_desk``, which needs Qt);
``make_core_desk`` builds one without the app, for the tests that run with Qt blocked. Both
import what they need when called, so this module itself imports no Qt.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from noojee_desk.core import paths
from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.desk import Desk
from noojee_desk.core.leads.layouts import FieldLayout
from noojee_desk.core.profiles.secrets import KeyStore
from noojee_desk.core.profiles.settings import SettingsStore
from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.emulator import Emulator

#: Short retry waits, so that retries, an outage and its recovery happen within a test.
FAST = RetryTiming(
    soon=(0.05, 0.1), backoff_base=0.1, backoff_cap=0.5, backoff_floor=0.05, unknown_base=0.05,
    breaker_after=2, probe_base=0.1, probe_cap=0.5,
)  # fmt: skip


def make_desk(home: Path, *, timing: RetryTiming | None = FAST, demo: bool = True) -> Desk:
    """The app's own desk on ``home`` (its log file, outbox opened, the built-in PBX's
    layouts), with ``timing`` for the retry waits; ``demo``: demo mode reaches the app's
    in-process ``DemoPbx`` (see ``demo_emulator``), else the desk has no demo mode."""
    from noojee_desk.app import build_desk, demo_factory

    return build_desk(str(home), demo=demo_factory() if demo else None, timing=timing)


def demo_emulator(desk: Desk) -> Emulator:
    """The emulator behind the demo mode of a desk from ``make_desk``."""
    from noojee_desk.app import DemoPbx

    pbx = desk.demo
    assert isinstance(pbx, DemoPbx), f"the desk's demo mode is {pbx!r}, not the app's DemoPbx"
    return pbx.emulator


def make_core_desk(
    home: Path,
    *,
    emulator: Emulator,
    layouts: Mapping[int, FieldLayout] | None = None,
    timing: RetryTiming | None = None,
) -> Desk:
    """A desk on ``home`` without the app (no Qt, no log file): demo mode reaches ``emulator``
    in-process, ``layouts`` are its templates' known layouts, ``timing`` the retry waits
    (None: the defaults). The outbox opens on first use."""
    where = paths.resolve(home).ensure()
    return Desk(
        where,
        SettingsStore(where.settings),
        KeyStore(),
        demo=lambda: (emulator.transport(), DEMO_API_KEY),
        demo_layouts=dict(layouts or {}),
        timing=timing,
    )
