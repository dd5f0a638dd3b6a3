"""Logging to a rotating file in the log folder, with API keys masked in every record."""

from __future__ import annotations

import io
import logging
import logging.handlers
from pathlib import Path

from noojee_desk.core.files import private_file, private_folder, private_opener
from noojee_desk.core.redact import MIN_SECRET, add_secret, redact_text


class RedactingFilter(logging.Filter):
    """Masks ``apiKey=...`` (and any key registered with ``add_secret``) in the final message."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add_secret(self, secret: str) -> None:
        """Mask ``secret`` here, and in every text redacted anywhere in this process (a value
        shorter than ``MIN_SECRET`` is not searched for: it would mask ordinary words)."""
        if secret and len(secret.strip()) >= MIN_SECRET:
            self._secrets.add(secret)
            add_secret(secret)

    def known_secrets(self) -> tuple[str, ...]:
        """The values masked besides apiKey parameters (for texts that are not log records)."""
        return tuple(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage(), *self._secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(
                logging.Formatter().formatException(record.exc_info), *self._secrets
            )
            record.exc_info = None
        return True


REDACTOR = RedactingFilter()


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Every log file it opens, after each rotation too, is readable only by the user."""

    def _open(self) -> io.TextIOWrapper:
        # A rotating handler always appends (it forces mode "a" whenever it rotates).
        return open(
            self.baseFilename,
            "a",
            encoding=self.encoding,
            errors=self.errors,
            opener=private_opener,
        )


def setup(log_file: Path, *, level: int = logging.INFO) -> None:
    """Send our records (and warnings of the libraries) to ``log_file``, 5 files of 2 MB."""
    root = logging.getLogger()
    if any(getattr(h, "_noojee_desk", False) for h in root.handlers):
        return
    try:
        private_folder(log_file.parent)
        private_file(log_file)
        handler: logging.Handler = _PrivateRotatingFileHandler(
            log_file, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
        )
    except OSError:
        handler = logging.StreamHandler()
    handler._noojee_desk = True  # type: ignore[attr-defined]
    handler.addFilter(REDACTOR)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.WARNING, logging.INFO))
    logging.getLogger("noojee_desk").setLevel(level)
    for noisy in ("httpx", "httpcore", "asyncio", "qasync"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
