"""The queue's search: what a typed text finds, and the indexes that find it fast.

A lead is found when the text, as typed, is anywhere in its field names and values, external id
or messages (SQLite's LIKE: ASCII letters in either case), or, when the text looks like a phone
number, when one of its phone-like field values ends with the typed digits or the typed digits
end with it ("0412 345 678", "412345678", "+61 412 345 678" and "345678" all find a lead whose
phone is "0412345678"). Leading zeros are ignored on both sides.

Two indexes give the first results at once (``Outbox.first_ids``); the scan over every lead
(``Outbox.lead_ids``) stays the complete answer:
  * ``lead_tails``: the reversed digits of each phone-like field value, so "ends with" is a range
    of the index;
  * ``lead_words`` (SQLite FTS5, when the sqlite3 module has it): the words of each lead's stored
    fields and external id, so a word typed finds the leads with a word starting with it.
    Its hits are checked with the LIKE rule, so they are always a part of what the scan finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: A phone-like text: digits with spaces, dashes, dots, brackets and a leading plus (ASCII only,
#: so that SQL says the same of a lead not indexed yet: ``PHONE_SQL``).
_PHONE_LIKE = re.compile(r"\+?[0-9 \-().]+")
_NOT_DIGIT = re.compile(r"[^0-9]")
#: A word as FTS5's unicode61 tokenizer sees it (letters and digits; the rest separates).
_WORD = re.compile(r"[^\W_]+")
#: The fewest digits (without leading zeros) a typed number needs to be looked up as a phone.
NEEDLE_DIGITS = 4
#: The fewest digits (without leading zeros) a field value needs to be indexed as a phone.
VALUE_DIGITS = 6
#: Just above '9': the tails starting with ``r`` are ``r <= tail < r + AFTER_DIGITS``.
AFTER_DIGITS = ":"


#: What a phone-like text starts with (a quick look before the pattern).
_PHONE_START = frozenset("+(0123456789")


def _significant_digits(text: str) -> str | None:
    text = text.strip(" ")
    if not text or text[0] not in _PHONE_START or not _PHONE_LIKE.fullmatch(text):
        return None
    return _NOT_DIGIT.sub("", text).lstrip("0")


def needle_tail(needle: str) -> str | None:
    """The reversed digits of a typed phone number (None: the text is not one, or too short)."""
    digits = _significant_digits(needle)
    return digits[::-1] if digits and len(digits) >= NEEDLE_DIGITS else None


def value_tails(values: Iterable[str]) -> set[str]:
    """The reversed digits of each phone-like value (what ``lead_tails`` holds for a lead)."""
    found: set[str] = set()
    for value in values:
        digits = _significant_digits(value)
        if digits and len(digits) >= VALUE_DIGITS:
            found.add(digits[::-1])
    return found


def phone_matches(needle: str, values: Iterable[str]) -> bool:
    """The phone rule on a lead's field values (``needle`` as typed)."""
    typed = needle_tail(needle)
    return typed is not None and tails_match(typed, value_tails(values))


def tails_match(typed: str, tails: Iterable[str]) -> bool:
    """A value ends with the typed digits, or the typed digits end with it (both reversed)."""
    return any(t.startswith(typed) or typed.startswith(t) for t in tails)


def tail_prefixes(typed: str) -> list[str]:
    """The tails the typed digits end with (for ``tail IN (...)``)."""
    return [typed[:n] for n in range(VALUE_DIGITS, len(typed) + 1)]


#: The phone rule in SQL on a lead's stored fields (``fields``), for the leads not indexed yet
#: (the same as ``phone_matches``; parameters: ``phone_sql_params``). A quick GLOB first: the
#: last digits typed (up to VALUE_DIGITS) are in the fields in their order, whatever is between.
PHONE_SQL = f"""fields GLOB ? AND EXISTS (SELECT 1 FROM (
    SELECT ltrim(replace(replace(replace(replace(replace(replace(
        v, ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '+', ''), '0') AS d
    FROM (SELECT trim(value, ' ') AS v FROM json_each(fields))
    WHERE v GLOB '[0-9+(]*' AND NOT substr(v, 2) GLOB '*[^0-9 ().-]*')
  WHERE length(d) >= {VALUE_DIGITS} AND (substr(d, -length(?)) = ? OR substr(?, -length(d)) = d))"""


def phone_sql_params(typed: str) -> list[str]:
    """The parameters of ``PHONE_SQL`` for ``needle_tail``'s reversed digits."""
    digits = typed[::-1]
    return ["*" + "*".join(digits[-VALUE_DIGITS:]) + "*", digits, digits, digits]


def words_query(needle: str) -> str | None:
    """An FTS5 query: every typed word as a word prefix (None: no word typed)."""
    words = _WORD.findall(needle)
    if not words:
        return None
    return " AND ".join(f'"{w}"*' for w in words)
