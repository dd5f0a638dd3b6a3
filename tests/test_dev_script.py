"""The set-up script: the Qt libraries a first run on Linux needs, named in one place."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "scripts" / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux only")
def test_a_missing_library_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = _dev()
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    missing = dev.missing_qt_packages(lambda name: name != "libxcb-icccm.so.4")
    assert missing == ["libxcb-icccm4"]
    assert dev.missing_qt_packages(lambda name: True) == []
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # no window: nothing to check
    assert dev.missing_qt_packages(lambda name: False) == []


def test_ci_installs_every_package_the_demo_checks() -> None:
    dev = _dev()
    packages = [package for _, package in dev.qt_libraries()]
    assert "libxcb-cursor0" in packages
    assert "libxcb-icccm4" in packages
    listed = subprocess.run(
        ["sh", "-c", "grep -v '^#' packaging/linux/qt-libraries.txt | awk 'NF == 2 {print $2}'"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed == packages  # what .ci/run's line extracts
    assert "packaging/linux/qt-libraries.txt" in (ROOT / ".ci" / "run").read_text()
