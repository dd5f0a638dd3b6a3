"""The Noojee result codes, and what each means for a sales person and for the queue."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Action(Enum):
    """What the queue does with a lead after the server answered with a code."""

    DELIVERED = "delivered"
    REJECT = "reject"  # final: the data or the number must change
    RETRY_SOON = "retry_soon"  # the server is busy (109): retry shortly, send fewer at once
    RETRY_BACKOFF = "retry_backoff"  # the server failed (103 / 5xx): retry with backoff
    NOT_FOR_INSERT = "not_for_insert"  # an update-only code: treated as a rejection


@dataclass(frozen=True, slots=True)
class Code:
    code: int
    name: str
    http_status: int
    action: Action
    sentence: str
    fix: str = ""


OK = 0
COULDNT_FIND_THE_LEAD = 101
NO_PHONE_FIELDS = 102
EXCEPTION = 103
DNC = 104
DUPLICATE = 105
INVALID_DISPOSITION = 106
DISPOSITION_NOT_SET = 107
IMPORT_BUT_NOCHANGE = 108
TOO_MANY_CONCURRENT = 109
UPDATE_CONFLICT = 110
INVALID_TIMEZONE = 111
DUPLICATE_EXTERNAL_ID = 112

_A = Action
CODES: dict[int, Code] = {
    c.code: c
    for c in (
        Code(OK, "OK", 200, _A.DELIVERED, "The lead was added to the campaign."),
        Code(
            COULDNT_FIND_THE_LEAD,
            "COULDNT_FIND_THE_LEAD",
            400,
            _A.NOT_FOR_INSERT,
            "The server could not find the lead to update.",
            "This only happens for updates; contact support if you see it while adding leads.",
        ),
        Code(
            NO_PHONE_FIELDS,
            "NO_PHONE_FIELDS",
            400,
            _A.REJECT,
            "The lead has no phone number the dialler can call.",
            "Fill in at least one phone field, and check the template's phone fields are mapped.",
        ),
        Code(
            EXCEPTION,
            "EXCEPTION",
            500,
            _A.RETRY_BACKOFF,
            "The PBX had an internal error (often a manual import is running on it).",
            "Nothing to do: the lead will be retried automatically in a few minutes.",
        ),
        Code(
            DNC,
            "DNC",
            400,
            _A.REJECT,
            "The phone number is on the Do Not Call list.",
            "This person must not be called; remove the lead.",
        ),
        Code(
            DUPLICATE,
            "DUPLICATE",
            400,
            _A.REJECT,
            "A lead with this phone number is already in the campaign.",
            "If you really want a second lead for this number, resend it with 'Allow duplicates'.",
        ),
        Code(
            INVALID_DISPOSITION,
            "INVALID_DISPOSTION",
            400,
            _A.NOT_FOR_INSERT,
            "The disposition given does not exist.",
            "This only happens for updates; contact support if you see it while adding leads.",
        ),
        Code(
            DISPOSITION_NOT_SET,
            "DISPOSTION_ISNT_SET_AND_NOCHANGE_SPECIFIED",
            400,
            _A.NOT_FOR_INSERT,
            "The lead has no disposition to keep unchanged.",
            "This only happens for updates; contact support if you see it while adding leads.",
        ),
        Code(
            IMPORT_BUT_NOCHANGE,
            "IMPORT_BUT_NOCHANGE_SPECIFIED",
            400,
            _A.REJECT,
            "A field contains '<NO CHANGE>', which is only allowed when updating a lead.",
            "Replace '<NO CHANGE>' with the real value, or leave the field empty.",
        ),
        Code(
            TOO_MANY_CONCURRENT,
            "TIMEOUT_TOO_MANY_CONCURRENT_REQUESTS",
            400,
            _A.RETRY_SOON,
            "The PBX is busy with other requests and did not get to this lead in time.",
            "Nothing to do: the lead will be retried shortly.",
        ),
        Code(
            UPDATE_CONFLICT,
            "LEAD_NOT_UPDATED_DUE_TO_CONFLICT",
            400,
            _A.NOT_FOR_INSERT,
            "Someone was editing the lead at the same time.",
            "Check the lead in the PBX by hand before trying again.",
        ),
        Code(
            INVALID_TIMEZONE,
            "INVALID_TIMEZONE_SPECIFIED",
            400,
            _A.REJECT,
            "The contact hours named for the lead do not exist on the PBX.",
            "Use a Contact Hours name defined on the PBX, or leave njContactHours empty.",
        ),
        Code(
            DUPLICATE_EXTERNAL_ID,
            "DUPLICATE_EXTERNAL_ID",
            400,
            _A.REJECT,
            "A lead with the same external id is already in the campaign.",
            "Give each lead its own njExternalLeadId, or leave it empty so one is generated.",
        ),
    )
}

#: On a retry after an attempt whose outcome is unknown, these codes mean "the first one landed".
DELIVERED_IF_RETRIED = frozenset({DUPLICATE, DUPLICATE_EXTERNAL_ID})


def describe(code: int) -> Code:
    """The entry for ``code``; an unknown code gets a generic entry that keeps the lead."""
    known = CODES.get(code)
    if known is not None:
        return known
    return Code(
        code,
        "UNKNOWN",
        0,
        _A.RETRY_BACKOFF,
        f"The PBX answered with code {code}, which Noojee Desk does not know.",
        "The lead is kept and retried; if this persists, contact support with the code.",
    )
