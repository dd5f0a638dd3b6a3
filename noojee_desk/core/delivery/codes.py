"""The Noojee result codes, and what each means for a sales person and for the queue."""

from __future__ import annotations

from dataclasses import dataclass

from noojee_desk.core.delivery.outcome import Kind, RetryReason
from noojee_desk.core.pbx import (
    COULDNT_FIND_THE_LEAD,
    DISPOSITION_NOT_SET,
    DNC,
    DUPLICATE,
    DUPLICATE_EXTERNAL_ID,
    EXCEPTION,
    IMPORT_BUT_NOCHANGE,
    INVALID_DISPOSITION,
    INVALID_TIMEZONE,
    NO_PHONE_FIELDS,
    OK,
    TOO_MANY_CONCURRENT,
    UNLISTED_114,
    UPDATE_CONFLICT,
)


@dataclass(frozen=True, slots=True)
class Code:
    code: int
    name: str
    http_status: int  # the status the PBX sends with it
    kind: Kind  # what the answer means for the lead
    retry: RetryReason | None  # why it is retried, for a RETRY_LATER kind
    sentence: str
    fix: str = ""


# (kind, retry reason) of each code: the one place an answer's code gets its meaning.
_REJECT = (Kind.REJECTED, None)
_SOON = (Kind.RETRY_LATER, RetryReason.BUSY)
_BACKOFF = (Kind.RETRY_LATER, RetryReason.SERVER_ERROR)
CODES: dict[int, Code] = {
    c.code: c
    for c in (
        Code(OK, "OK", 200, Kind.DELIVERED, None, "The lead was added to the campaign."),
        Code(
            COULDNT_FIND_THE_LEAD,
            "COULDNT_FIND_THE_LEAD",
            400,
            *_REJECT,  # an update-only code
            "The server could not find the lead to update.",
            "This only happens for updates; contact support if you see it while adding leads.",
        ),
        Code(
            NO_PHONE_FIELDS,
            "NO_PHONE_FIELDS",
            400,
            *_REJECT,
            "The lead has no phone number the dialler can call.",
            "Fill in at least one phone field, and check the template's phone fields are mapped.",
        ),
        Code(
            EXCEPTION,
            "EXCEPTION",
            500,
            *_BACKOFF,
            "The PBX had an internal error (often a manual import is running on it).",
            "Nothing to do: the lead will be retried automatically in a few minutes.",
        ),
        Code(
            DNC,
            "DNC",
            400,
            *_REJECT,
            "The phone number is on the Do Not Call list.",
            "This person must not be called; remove the lead.",
        ),
        Code(
            DUPLICATE,
            "DUPLICATE",
            400,
            *_REJECT,
            "A lead with this phone number is already in the campaign.",
            "If you really want a second lead for this number, resend it with 'Allow duplicates'.",
        ),
        Code(
            INVALID_DISPOSITION,
            "INVALID_DISPOSTION",
            400,
            *_REJECT,  # an update-only code
            "The disposition given does not exist.",
            "This only happens for updates; contact support if you see it while adding leads.",
        ),
        Code(
            DISPOSITION_NOT_SET,
            "DISPOSTION_ISNT_SET_AND_NOCHANGE_SPECIFIED",
            400,
            *_REJECT,  # an update-only code
            "The lead has no disposition to keep unchanged.",
            "This only happens for updates; contact support if you see it while adding leads.",
        ),
        Code(
            IMPORT_BUT_NOCHANGE,
            "IMPORT_BUT_NOCHANGE_SPECIFIED",
            400,
            *_REJECT,
            "A field contains '<NO CHANGE>', which is only allowed when updating a lead.",
            "Replace '<NO CHANGE>' with the real value, or leave the field empty.",
        ),
        Code(
            TOO_MANY_CONCURRENT,
            "TIMEOUT_TOO_MANY_CONCURRENT_REQUESTS",
            400,
            *_SOON,
            "The PBX is busy with other requests and did not get to this lead in time.",
            "Nothing to do: the lead will be retried shortly.",
        ),
        Code(
            UPDATE_CONFLICT,
            "LEAD_NOT_UPDATED_DUE_TO_CONFLICT",
            400,
            *_REJECT,  # an update-only code
            "Someone was editing the lead at the same time.",
            "Check the lead in the PBX by hand before trying again.",
        ),
        Code(
            INVALID_TIMEZONE,
            "INVALID_TIMEZONE_SPECIFIED",
            400,
            *_REJECT,
            "The contact hours named for the lead do not exist on the PBX.",
            "Use a Contact Hours name defined on the PBX, or leave njContactHours empty.",
        ),
        Code(
            DUPLICATE_EXTERNAL_ID,
            "DUPLICATE_EXTERNAL_ID",
            400,
            *_REJECT,
            "A lead with the same external id is already in the campaign.",
            "Give each lead its own njExternalLeadId, or leave it empty so one is generated.",
        ),
    )
}

#: On a retry after an attempt whose outcome is unknown, these codes mean "the first one landed".
DELIVERED_IF_RETRIED = frozenset({DUPLICATE_EXTERNAL_ID})
#: After an unknown outcome, a 105 may be this lead's own first attempt or another lead with
#: the same phone: the lead ends ``duplicate``, neither delivered nor rejected.
DUPLICATE_IF_RETRIED = frozenset({DUPLICATE})

DUPLICATE_SENTENCE = (
    "A lead with this phone number is in the campaign; it may be this lead's own earlier "
    "attempt (whose answer was lost) or another lead."
)
DUPLICATE_FIX = (
    "Look the number up on the PBX: if this lead is there, nothing to do; if not, resend it "
    "with 'Allow duplicates'."
)


#: Listed in the PBX's current code table with a meaning that is not public.
UNDOCUMENTED = frozenset({UNLISTED_114})


def describe(code: int, http_status: int | None = None) -> Code:
    """The entry for ``code``. A code we do not know is judged by its HTTP status: with a 4xx
    the PBX refused the lead and a person must look (every documented 4xx code but 109 is final);
    otherwise it is kept and retried as a server error."""
    known = CODES.get(code)
    if known is not None:
        return known
    shown = f"code {code}" if len(str(code)) <= 12 else "a code"
    if code in UNDOCUMENTED:
        shown = f"code {code} (listed in the PBX's code table; its meaning is not public)"
    if http_status is not None and 400 <= http_status < 500:
        return Code(
            code,
            "UNKNOWN",
            http_status,
            Kind.REJECTED,
            None,
            f"The PBX refused the lead with {shown}, which Noojee Desk does not know.",
            "Check the server's message below; if the leads and the campaign look right, "
            "contact Noojee support with the code.",
        )
    return Code(
        code,
        "UNKNOWN",
        http_status or 0,
        *_BACKOFF,
        f"The PBX answered with {shown}, which Noojee Desk does not know.",
        "The lead is kept and retried; if this persists, contact support with the code.",
    )
