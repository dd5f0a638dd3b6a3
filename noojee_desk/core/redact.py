"""Keep the API key out of every URL and text that is logged, shown, raised or exported."""

from __future__ import annotations

import re

MASK = "***"
_KEY_PARAM = re.compile(r"(?i)(apikey=)[^&#\s'\"<>]*")


def redact_url(url: object) -> str:
    """``url`` as text with the value of every ``apiKey`` query parameter masked."""
    return _KEY_PARAM.sub(lambda m: m.group(1) + MASK, str(url))


def redact_text(text: object, *secrets: str | None) -> str:
    """``text`` with apiKey parameters masked and every given secret value replaced."""
    result = redact_url(text)
    for secret in secrets:
        if secret:
            result = result.replace(secret, MASK)
    return result
