"""Set-up mistakes: a batch whose first answers are the same refusal that no lead's data explains.

A wrong phone field, a wrong mapping or a campaign the key may not use makes the PBX refuse every
lead of a batch the same way. Sending the rest would only burn the batch: after ``STOP_AFTER`` such
answers, before any lead of the batch was delivered, the batch's unsent leads are held and a person
is told what is probably wrong. While a batch looks like that, its leads go one at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from noojee_desk.core.delivery import codes
from noojee_desk.core.delivery.outcome import Kind, Outcome
from noojee_desk.core.delivery.records import Lead

#: Same set-up refusals, with no delivery in between, that stop a batch.
STOP_AFTER = 5

_TARGET_WORDS = re.compile(r"ftemplateid|fcampaignid|fallocationid|template|campaign|allocation")


def mistake_of(outcome: Outcome) -> str | None:
    """What kind of set-up mistake ``outcome`` points at, or None for an answer about data."""
    code = outcome.code
    if outcome.kind is Kind.REJECTED and code in (codes.NO_PHONE_FIELDS, codes.INVALID_TIMEZONE):
        return str(code)
    if outcome.kind is Kind.REJECTED and code is not None and code not in codes.CODES:
        return f"code {code}"
    if code == codes.EXCEPTION and _TARGET_WORDS.search(outcome.message.casefold()):
        return "target"
    return None


@dataclass(frozen=True, slots=True)
class SetupStopped:
    """The unsent leads of a batch are held: its first answers were the same set-up mistake."""

    batch_id: int
    code: int | None
    held: int
    sentence: str
    fix: str


@dataclass(slots=True)
class _Watch:
    mistake: str | None = None
    count: int = 0
    example: Outcome | None = None
    lead: Lead | None = None
    delivered: bool = False


@dataclass(slots=True)
class SetupWatch:
    """Per batch: are the first answers the same set-up mistake?"""

    stop_after: int = STOP_AFTER
    _batches: dict[int, _Watch] = field(default_factory=dict)
    _exempt: set[int] = field(default_factory=set)

    def exempt(self, batch_id: int) -> None:
        """A person said "send anyway": this batch is never stopped again in this run."""
        self._exempt.add(batch_id)
        self._batches.pop(batch_id, None)

    def forget(self, batch_id: int) -> None:
        """The batch has nothing left to send: it is no longer watched."""
        self._batches.pop(batch_id, None)

    @property
    def suspect(self) -> bool:
        """Some batch has had a set-up refusal and no delivery yet: send one lead at a time."""
        return any(w.count and not w.delivered for w in self._batches.values())

    def answer(self, lead: Lead, outcome: Outcome) -> bool:
        """Note an answer for ``lead``; True when its batch must stop now."""
        if lead.batch_id in self._exempt:
            return False
        watch = self._batches.setdefault(lead.batch_id, _Watch())
        if watch.delivered:
            return False
        if outcome.kind is Kind.DELIVERED:
            watch.delivered = True
            return False
        mistake = mistake_of(outcome)
        if mistake is None:
            return False
        if mistake != watch.mistake:
            watch.mistake, watch.count = mistake, 0
        watch.count += 1
        watch.example, watch.lead = outcome, lead
        if watch.count < self.stop_after:
            return False
        watch.count = 0  # stopped: a "send anyway" or a restart starts counting afresh
        return True

    def explain(self, batch_id: int, held: int) -> SetupStopped:
        watch = self._batches.get(batch_id) or _Watch()
        outcome, lead = watch.example, watch.lead
        code = outcome.code if outcome is not None else None
        server = f" (server: {code} {outcome.message})" if outcome and outcome.message else ""
        refused = f"The PBX refused {self.stop_after} leads of this batch in a row the same way"
        if watch.mistake == str(codes.NO_PHONE_FIELDS):
            sent = _phone_like(lead)
            where = f" It was sent the number in {sent}." if sent else ""
            sentence = (
                f"{refused}: no phone field it can dial (102), although each lead has a number."
                f"{where} The template's phone fields are probably set wrong."
            )
            fix = (
                "Open Fields… and tick the fields the dialler calls (or map the number to one of "
                "them), then take these leads back to re-map them, or send them anyway."
            )
        elif watch.mistake == str(codes.INVALID_TIMEZONE):
            sentence = f"{refused}: the contact hours named do not exist on the PBX (111)."
            fix = "Check the njContactHours column (or leave it unmapped), then send again."
        elif watch.mistake == "target":
            sentence = f"{refused}: it does not accept the template, campaign or allocation."
            fix = "Choose the template, campaign and allocation again (Refresh), then send again."
        else:
            sentence = f"{refused}, with a code Noojee Desk does not know{server}."
            fix = "Check the server's message; contact Noojee support with the code if unsure."
        held_text = f"{held} unsent leads are held." if held != 1 else "1 unsent lead is held."
        return SetupStopped(batch_id, code, held, f"{sentence} {held_text}", fix)


def _phone_like(lead: Lead | None) -> str:
    """The fields of ``lead`` that hold something like a phone number, for the message."""
    if lead is None:
        return ""
    names = [
        name
        for name, value in lead.fields.items()
        if sum(c.isdigit() for c in value) >= 8 and "@" not in value
    ]
    return ", ".join(names[:3])
