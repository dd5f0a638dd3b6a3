"""docs/security.md names the tests that keep each promise: every one of them exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def named_tests(text: str) -> list[tuple[str, str | None]]:
    """``(file, test)`` for each `tests/...py[::name]` and each `::name` after one."""
    found: list[tuple[str, str | None]] = []
    current = ""
    for cell in re.findall(r"`([^`]+)`", text):
        whole = re.fullmatch(r"(tests/[\w/]+\.py)(?:::(\w+))?", cell)
        if whole:
            current = whole.group(1)
            found.append((current, whole.group(2)))
        elif re.fullmatch(r"::\w+", cell) and current:
            found.append((current, cell[2:]))
    return found


def test_every_test_the_security_page_names_exists() -> None:
    named = named_tests((ROOT / "docs" / "security.md").read_text(encoding="utf-8"))
    assert len(named) > 40
    missing = []
    for file, test in named:
        path = ROOT / file
        if not path.is_file():
            missing.append(file)
        elif test and not re.search(rf"^(async )?def {test}\b", path.read_text("utf-8"), re.M):
            missing.append(f"{file}::{test}")
    assert missing == []
