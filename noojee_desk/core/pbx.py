"""The PBX's own vocabulary that lead data and delivery share: result code numbers, field names."""

from __future__ import annotations

from typing import Final

OK: Final = 0
COULDNT_FIND_THE_LEAD: Final = 101
NO_PHONE_FIELDS: Final = 102
EXCEPTION: Final = 103
DNC: Final = 104
DUPLICATE: Final = 105
INVALID_DISPOSITION: Final = 106
DISPOSITION_NOT_SET: Final = 107
IMPORT_BUT_NOCHANGE: Final = 108
TOO_MANY_CONCURRENT: Final = 109
UPDATE_CONFLICT: Final = 110
INVALID_TIMEZONE: Final = 111
DUPLICATE_EXTERNAL_ID: Final = 112
#: In the PBX's current code table; what it means is not public.
UNLISTED_114: Final = 114

#: The field that carries a lead's own unique id; the PBX answers 112 when it repeats.
EXTERNAL_ID_FIELD: Final = "njExternalLeadId"

#: The time zone a PBX is in when its connection names none (Noojee is an Australian service).
DEFAULT_TIMEZONE: Final = "Australia/Sydney"
