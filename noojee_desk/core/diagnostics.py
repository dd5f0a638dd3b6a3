"""The text a manager pastes into a support ticket: what runs, where, with which settings.

Every key the desk knows (the keyring's, the session's, any the log filter masks) is replaced
by ``***`` in the whole text, and so is every ``apiKey=`` parameter.
"""

from __future__ import annotations

import platform
import sys
from collections import deque
from pathlib import Path

from noojee_desk import APP_NAME, __version__
from noojee_desk.core.desk import Desk
from noojee_desk.core.logs import REDACTOR
from noojee_desk.core.profiles.managed import CHECKING_RULES
from noojee_desk.core.redact import redact_text

LOG_LINES = 40


def last_lines(path: Path, count: int = LOG_LINES) -> list[str]:
    """The last ``count`` lines of a log file (none when it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=count)]
    except OSError:
        return []


async def _keys(desk: Desk) -> list[str]:
    found: list[str] = []
    for profile in desk.settings.profiles:
        if profile.demo:
            continue
        try:
            key = await desk.keys.get(profile.name)
        except Exception:  # an unavailable keyring: nothing of it can leak either
            key = None
        if key:
            found.append(key)
    return found


def _queue(desk: Desk) -> list[str]:
    try:
        outbox = desk.outbox
        lines = []
        for profile in desk.settings.profiles:
            counts = {k: v for k, v in outbox.counts(profile.name).as_dict().items() if v}
            shown = ", ".join(f"{state} {n}" for state, n in counts.items()) or "empty"
            lines.append(f"  {profile.name}: {shown}")
        return lines or ["  (no connections)"]
    except Exception as exc:  # a damaged or busy queue file is itself worth reporting
        return [f"  could not be read: {exc}"]


def settings_source(desk: Desk) -> str:
    managed = desk.managed
    if managed.problem:
        return f"{desk.paths.settings} (the managed file {managed.path} is damaged and ignored)"
    if managed.path is not None:
        return f"{desk.paths.settings} over the managed file {managed.path}"
    return f"{desk.paths.settings} (no managed file)"


def _text(desk: Desk, qt: str) -> str:
    p, rules = desk.paths, desk.managed.rules
    lines = [
        f"{APP_NAME} {__version__}",
        f"OS: {platform.platform()}",
        f"Python: {sys.version.split()[0]}",
        f"Qt: {qt or 'not loaded'}",
        f"Settings: {settings_source(desk)}",
    ]
    if desk.managed.problem:
        lines.append(f"Managed file problem: {desk.managed.problem}")
    lines += [
        f"Data: {p.data}",
        f"Logs: {p.logs}",
        f"Keyring: {desk.keys.backend_name()}",
        f"Demo mode allowed: {'yes' if desk.demo_allowed else 'no'}",
        "Checking rules:",
    ]
    for rule in CHECKING_RULES:
        if hasattr(desk.settings, rule):
            lock = " (locked)" if rules.is_locked(rule) else ""
            lines.append(f"  {rule}: {getattr(desk.settings, rule)}{lock}")
    active = desk.profile.name if desk.profile is not None else "none"
    lines.append(f"Connections (active: {active}):")
    for profile in desk.settings.profiles:
        where = "built-in demo" if profile.demo else profile.server_url
        managed = " [managed]" if rules.connection(profile.name) is not None else ""
        lines.append(f"  {profile.name}: {where}, {profile.timezone}{managed}")
    lines.append("Queue:")
    lines += _queue(desk)
    lines.append(f"Last log lines ({p.log_file}):")
    lines += [f"  {line}" for line in last_lines(p.log_file)] or ["  (none)"]
    return "\n".join(lines) + "\n"


async def gather(desk: Desk, *, qt: str = "") -> str:
    """The diagnostics text, every known key masked."""
    secrets = [*await _keys(desk), *REDACTOR.known_secrets()]
    return redact_text(_text(desk, qt), *secrets)
