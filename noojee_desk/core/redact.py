"""Keep the API key out of every URL and text that is logged, shown, raised, stored or exported.

A server, proxy or sign-in page may echo the key back in other clothes: plainly, URL-encoded
(``%26apiKey%3D...``, or the key's own ``%2B``/``%2F``), JSON-escaped (``"apiKey": "..."``) or
as HTML. Each form is masked: the ``apiKey`` parameter wherever it appears, and the value of
every key in use (``add_secret``) in any of those forms.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from urllib.parse import quote, quote_plus

MASK = "***"
#: ``apiKey=v``, ``apiKey%3Dv`` (and ``%253D``), ``"apiKey": "v"``, ``'api_key': 'v'``,
#: ``apikey: v``.
_KEY_PARAM = re.compile(
    r"""(?ix)
    (api[_-]?key
      (?: = | %(?:25)*3d | ["']?\s*[:=]\s*["']? | \\"\s*:\s*\\" )
    )
    ( (?: (?!%(?:25)*26) [^&#\s'"<>,;}\\] | \\[^"] )* )
    """
)
#: Secrets shorter than this are not searched for (they would mask ordinary words).
MIN_SECRET = 6

_secrets: set[str] = set()


def add_secret(secret: str | None) -> None:
    """Mask ``secret`` (in every form) in all text redacted from now on, in this process."""
    if secret and len(secret.strip()) >= MIN_SECRET:
        _secrets.add(secret.strip())


def forms(secret: str) -> set[str]:
    """The ways ``secret`` may be written back: plain, URL-encoded (once or twice, ``+`` for
    spaces or not), JSON-escaped (once or twice) and HTML-escaped."""
    once_json = json.dumps(secret)[1:-1]
    # A JSON message quoting a JSON body escapes the key twice.
    found = {secret, html.escape(secret), once_json, json.dumps(once_json)[1:-1]}
    found.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    for once in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        found.update({once, quote(once, safe=""), json.dumps(once)[1:-1]})
    return {form for form in found if form}


@lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    every = {form for secret in secrets for form in forms(secret)}
    if not every:
        return None
    # Longest first, so a longer encoding is masked whole rather than its plain part alone.
    alternatives = sorted(every, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)


def redact_url(url: object) -> str:
    """``url`` as text with the value of every ``apiKey`` query parameter masked."""
    return _KEY_PARAM.sub(lambda m: m.group(1) + MASK, str(url))


def redact_text(text: object, *secrets: str | None) -> str:
    """``text`` with every given or added secret replaced and apiKey parameters masked.

    The secrets go first: the parameter rule ends a value at ``&``, a quote or a comma, so a key
    holding one would keep its tail if the rule ran first and left no whole key to find."""
    result = str(text)
    wanted = frozenset(s.strip() for s in (*secrets, *_secrets) if s and s.strip())
    pattern = _pattern(wanted) if wanted else None
    if pattern is not None:
        result = pattern.sub(MASK, result)
    return redact_url(result)
