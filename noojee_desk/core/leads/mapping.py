"""Header detection and column mappings: which pasted column goes to which template field."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from noojee_desk.core.bulk import paused_gc
from noojee_desk.core.leads.layouts import SYSTEM_FIELDS, FieldLayout, name_words


def _key(text: str) -> str:
    """A name reduced for comparison: "Post code" and "POSTCODE" both give "postcode"."""
    return "".join(c for c in text.casefold() if c.isalnum())


def _any_order(text: str) -> str:
    """A name's words in sorted order: "First Name" and "name_first" both give "firstname"."""
    return "".join(sorted(name_words(text)))


def _names_by_key(layout: FieldLayout) -> dict[str, str]:
    """Every way a heading may name a target: its key and its label, word order ignored."""
    found: dict[str, str] = {}
    for name in layout.mappable_names:
        found.setdefault(_key(name), name)
    for spec in layout.fields:
        for text in (spec.name, spec.label):
            if text:
                found.setdefault(_key(text), spec.name)
                found.setdefault(_any_order(text), spec.name)
    return found


_CONCEPT_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "fullname",
        "contactname",
        "customername",
        "customer",
        "clientname",
        "client",
        "leadname",
        "contact",
        "person",
    ),
    "firstname": ("firstname", "first", "givenname", "given", "fname", "forename"),
    "lastname": ("lastname", "surname", "familyname", "last", "lname"),
    "street": (
        "streetaddress",
        "address",
        "street",
        "address1",
        "addressline1",
        "addr",
        "homeaddress",
        "postaladdress",
        "streetaddress1",
    ),
    "address2": ("address2", "addressline2", "streetaddress2"),
    "city": ("city", "suburb", "town", "locality", "suburbtown", "citysuburb", "suburbcity"),
    "state": ("state", "province", "territory", "county", "statecode"),
    "postcode": ("postcode", "postalcode", "zip", "zipcode", "pcode", "postzip", "pc"),
    "country": ("country", "countrycode"),
    "email": ("email", "emailaddress", "mail", "emailid"),
    "company": (
        "company",
        "companyname",
        "business",
        "businessname",
        "organisation",
        "organization",
        "employer",
    ),
    "njExternalLeadId": (
        "njexternalleadid",
        "externalleadid",
        "externalid",
        "leadid",
        "reference",
        "ref",
        "refno",
        "id",
        "customerid",
        "clientid",
    ),
    "njCallBackDate": (
        "njcallbackdate",
        "callbackdate",
        "callback",
        "callbacktime",
        "callbackdatetime",
        "callbackat",
        "callbackon",
    ),
    "njPriority": ("njpriority", "priority", "leadpriority"),
    "njContactHours": ("njcontacthours", "contacthours", "contacthourszone"),
}
_ALIAS_TO_CONCEPT = {alias: c for c, aliases in _CONCEPT_ALIASES.items() for alias in aliases}
_PHONE_ALIAS = re.compile(
    r"(first|second|third|fourth|primary|secondary|alt|alternate|alternative|other|home|work|"
    r"business|office|direct|contact|main|daytime|evening)?"
    r"(phone|phones|mobile|mob|cell|cellphone|tel|telephone|ph|landline|number|phonenumber|"
    r"mobilephone|mobilenumber|contactnumber|telno|mobileno|phoneno)"
    r"(number|no|num)?(\d{0,2})"
)
_ORDINALS = {"first": 1, "primary": 1, "main": 1, "second": 2, "secondary": 2, "third": 3}
_ORDINALS["fourth"] = 4


def _phone_index(key: str) -> tuple[bool, int | None]:
    """(is a phone header, its position among the phone fields when it says so)."""
    match = _PHONE_ALIAS.fullmatch(key)
    if match is None:
        return False, None
    prefix, _, _, digits = match.groups()
    if digits:
        return True, int(digits)
    if prefix in _ORDINALS:
        return True, _ORDINALS[prefix]
    return True, None


def header_signature(cells: Sequence[str]) -> str:
    """A key for a header row: the same headings (any case, spacing) give the same key."""
    normal = "\x1f".join(" ".join(str(c).casefold().split()) for c in cells)
    digest = hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"h{len(cells)}:{digest}"


def headerless_signature(width: int) -> str:
    """The key for rows pasted without a header row, by their number of columns."""
    return f"n{width}"


def mapping_key(header: Sequence[str], has_header: bool) -> str:
    """The key under which the mapping for these rows is saved."""
    return header_signature(header) if has_header else headerless_signature(len(header))


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which field each source column goes to (None: not sent). Several columns may feed one
    field ("First name" + "Surname" -> "Name"); their values are joined with a space."""

    targets: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.targets)

    def target(self, column: int) -> str | None:
        return self.targets[column] if 0 <= column < len(self.targets) else None

    def columns_of(self, field_name: str) -> list[int]:
        return [i for i, t in enumerate(self.targets) if t == field_name]

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields that receive a column, in column order, each once."""
        return tuple(dict.fromkeys(t for t in self.targets if t))

    def with_target(self, column: int, field_name: str | None) -> ColumnMapping:
        """This mapping with ``column`` sent to ``field_name`` (None: not sent)."""
        targets = list(self.targets)
        if column >= len(targets):
            targets.extend([None] * (column + 1 - len(targets)))
        targets[column] = field_name or None
        return ColumnMapping(tuple(targets))

    def to_list(self) -> list[str | None]:
        return list(self.targets)

    @classmethod
    def from_list(cls, values: object, layout: FieldLayout, width: int) -> ColumnMapping | None:
        """A mapping from stored data; None when it does not fit ``width`` columns. Targets that
        are no longer fields of ``layout`` are dropped."""
        if not isinstance(values, list | tuple) or len(values) != width:
            return None
        allowed = set(layout.mappable_names)
        targets = tuple(v if isinstance(v, str) and v in allowed else None for v in values)
        return cls(targets)


def mapping_entry(
    header: Sequence[str], has_header: bool, mapping: ColumnMapping
) -> tuple[str, list[str | None]]:
    """(key, value) to keep in the saved mappings so the same paste maps itself next time."""
    return mapping_key(header, has_header), mapping.to_list()


def _looks_like_data(cell: str) -> bool:
    text = cell.strip()
    if not text:
        return False
    digits = sum(c.isdigit() for c in text)
    if digits >= 6 and digits >= 0.5 * len(text):
        return True  # a phone number, a date, an amount
    if "@" in text and "." in text.split("@")[-1]:
        return True  # an e-mail address
    return bool(re.fullmatch(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}.*", text))


def _looks_like_phone(cell: str) -> bool:
    text = cell.strip()
    digits = sum(c.isdigit() for c in text)
    return 8 <= digits <= 15 and digits >= 0.6 * len(text) and "@" not in text


def _guess_targets(header: Sequence[str], layout: FieldLayout) -> tuple[list[str | None], int]:
    """A target per heading, and how many headings were recognised."""
    targets: list[str | None] = [None] * len(header)
    taken: set[str] = set()
    by_key = _names_by_key(layout)
    phone_fields = list(layout.phone_fields)
    recognised = 0
    keys = [_key(str(cell)) for cell in header]

    # 1. Exact names: a field's key or label, in any letter case and word order.
    for i, key in enumerate(keys):
        name = by_key.get(key) or by_key.get(_any_order(str(header[i])))
        if key and name is not None and name not in taken:
            targets[i] = name
            taken.add(name)
            recognised += 1

    # 2. Phone headings, numbered ones first.
    numbered: list[tuple[int, int]] = []
    plain: list[int] = []
    for i, key in enumerate(keys):
        if targets[i] is not None or not key:
            continue
        is_phone, index = _phone_index(key)
        if is_phone and index:
            numbered.append((i, index))
        elif is_phone:
            plain.append(i)
    recognised += len(numbered) + len(plain)
    for i, index in numbered:
        if 1 <= index <= len(phone_fields) and phone_fields[index - 1] not in taken:
            targets[i] = phone_fields[index - 1]
            taken.add(phone_fields[index - 1])
        else:
            plain.append(i)  # "Phone 3" with two phone fields: the next free one, if any
    for i in sorted(plain):
        free = [f for f in phone_fields if f not in taken]
        if free:
            targets[i] = free[0]
            taken.add(free[0])

    # 3. Other known headings.
    concept_fields: dict[str, list[str]] = {}
    for name in layout.mappable_names:
        concept = _ALIAS_TO_CONCEPT.get(_key(name))
        if concept is not None:
            concept_fields.setdefault(concept, []).append(name)
    for system in SYSTEM_FIELDS:
        concept_fields.setdefault(system, [system])
    for i, key in enumerate(keys):
        if targets[i] is not None or not key:
            continue
        concept = _ALIAS_TO_CONCEPT.get(key)
        if concept is None:
            continue
        recognised += 1
        free = [f for f in concept_fields.get(concept, []) if f not in taken]
        if free:
            targets[i] = free[0]
            taken.add(free[0])

    # 4. First name + surname into a single name field.
    name_fields = [f for f in concept_fields.get("name", []) if f not in taken]
    if name_fields and not concept_fields.get("firstname") and not concept_fields.get("lastname"):
        parts = [
            i
            for i, key in enumerate(keys)
            if targets[i] is None and _ALIAS_TO_CONCEPT.get(key) in ("firstname", "lastname")
        ]
        if parts:
            for i in parts:
                targets[i] = name_fields[0]

    # 5. A field name inside a longer heading ("Customer Email Address" -> "Email").
    for i, key in enumerate(keys):
        if targets[i] is not None or len(key) < 4:
            continue
        for name in layout.mappable_names:
            field_key = _key(name)
            if name not in taken and len(field_key) >= 4 and field_key in key:
                targets[i] = name
                taken.add(name)
                recognised += 1
                break
    return targets, recognised


def _content_targets(
    width: int, rows: Sequence[Sequence[str]], layout: FieldLayout
) -> list[str | None]:
    """Targets for rows without a header: the layout's order, unless the phone numbers sit in
    other columns; then phone columns go to the phone fields and the rest follow in order."""
    names = list(layout.names)
    positional: list[str | None] = [names[i] if i < len(names) else None for i in range(width)]
    phone_columns = set()
    for column in range(width):
        values = [r[column] for r in rows if column < len(r) and r[column].strip()]
        if values and sum(_looks_like_phone(v) for v in values) >= max(1, len(values) / 2):
            phone_columns.add(column)
    phone_fields = set(layout.phone_fields)
    positional_phone = {i for i, t in enumerate(positional) if t in phone_fields}
    if not phone_columns or phone_columns <= positional_phone:
        return positional
    targets: list[str | None] = [None] * width
    free_phones = [f for f in layout.names if f in phone_fields]
    others = [f for f in layout.names if f not in phone_fields]
    for column in range(width):
        pool = free_phones if column in phone_columns else others
        if pool:
            targets[column] = pool.pop(0)
    return targets


def detect_mapping(
    header: Sequence[str],
    layout: FieldLayout,
    saved: Mapping[str, list[str | None]] | None = None,
    sample: Sequence[Sequence[str]] = (),
) -> tuple[bool, ColumnMapping]:
    """Whether ``header`` (the first row) is a header row, and where each column goes.

    A mapping saved for the same headings (or, without headings, the same number of columns)
    is used as it is. ``sample``: a few of the following rows, to tell data from headings."""
    header = [str(c) for c in header]
    width = len(header)
    saved = saved or {}
    stored = ColumnMapping.from_list(saved.get(header_signature(header)), layout, width)
    if stored is not None:
        return True, stored
    targets, recognised = _guess_targets(header, layout)
    data_like = any(_looks_like_data(c) for c in header)
    has_header = recognised > 0 and not data_like
    if not has_header and not data_like and sample:
        # Unknown headings above columns of numbers: still a header row.
        for column in range(width):
            values = [r[column] for r in sample if column < len(r) and r[column].strip()]
            if (
                header[column].strip()
                and values
                and sum(_looks_like_phone(v) for v in values) >= max(1, len(values) / 2)
            ):
                has_header = True
                break
    if has_header:
        if not any(t in layout.phone_fields for t in targets) and sample:
            # No phone heading recognised: find the phone column by its content.
            content = _content_targets(width, sample, layout)
            for column, target in enumerate(content):
                if (
                    target in layout.phone_fields
                    and targets[column] is None
                    and target not in targets
                ):
                    targets[column] = target
        return True, ColumnMapping(tuple(targets))
    stored = ColumnMapping.from_list(saved.get(headerless_signature(width)), layout, width)
    if stored is not None:
        return False, stored
    rows = [header, *sample]
    return False, ColumnMapping(tuple(_content_targets(width, rows, layout)))


@paused_gc()
def apply_mapping(rows: Iterable[Sequence[str]], mapping: ColumnMapping) -> list[dict[str, str]]:
    """One dict of field -> text per row; columns mapped to one field are joined with a space."""
    pairs = [(i, t) for i, t in enumerate(mapping.targets) if t]
    if not pairs:
        return [{} for _ in rows]
    fields = [t for _, t in pairs]
    if len(set(fields)) == len(fields):
        indexes = [i for i, _ in pairs]
        needed = max(indexes) + 1
        out = []
        for row in rows:
            if len(row) < needed:
                row = [*row, *([""] * (needed - len(row)))]
            out.append(dict(zip(fields, [row[i] for i in indexes], strict=True)))
        return out
    groups: dict[str, list[int]] = {}
    for i, t in pairs:
        groups.setdefault(t, []).append(i)
    result = []
    for row in rows:
        record = {}
        for name, columns in groups.items():
            values = [row[i].strip() for i in columns if i < len(row) and row[i].strip()]
            record[name] = " ".join(values)
        result.append(record)
    return result
