"""A pytest plugin that makes PySide6, shiboken6 and qasync impossible to import.

The test command runs the core and emulator tests once under it (``-p no_qt -p no:pytestqt``):
a Qt import anywhere on their path then fails the run, whatever import-linter can see (a lazy
import inside a function, a plugin, a conftest). The pytest-qt settings in pyproject.toml stay
declared, so ``--strict-config`` still accepts the shared configuration.
"""

from __future__ import annotations

import importlib.abc
import sys

import pytest

BLOCKED = ("PySide6", "shiboken6", "qasync")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".", 1)[0] in BLOCKED:
            raise ImportError(
                f"{fullname} is blocked: the core and the emulator must run without Qt"
            )
        return None


already = [name for name in BLOCKED if name in sys.modules]
if already:
    raise RuntimeError(f"imported before the blocker was installed: {already}")
sys.meta_path.insert(0, _Blocker())


def pytest_addoption(parser: pytest.Parser) -> None:
    # pytest-qt's settings, declared but unused while it is not loaded.
    parser.addini("qt_api", "unused without pytest-qt")
    parser.addini("qt_log_level_fail", "unused without pytest-qt")
    parser.addini("qt_log_ignore", "unused without pytest-qt", type="linelist")


def pytest_sessionfinish(session: pytest.Session) -> None:
    loaded = [name for name in BLOCKED if name in sys.modules]
    assert not loaded, f"Qt was imported after all: {loaded}"
