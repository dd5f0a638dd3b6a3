"""Field layouts of campaign templates: field names in order, phone fields, required fields."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: Fields every template accepts besides its own; always mappable.
SYSTEM_FIELDS: tuple[str, ...] = (
    "njExternalLeadId",
    "njCallBackDate",
    "njPriority",
    "njContactHours",
)

#: The field names of the documented sample lead.
DEFAULT_FIELD_NAMES: tuple[str, ...] = (
    "Name",
    "StreetAddress",
    "City",
    "State",
    "PostCode",
    "FirstPhone",
    "SecondPhone",
)

DEFAULT_MAX_LENGTH = 255
#: Longest field name accepted in a layout (names longer than this are junk, not a template field).
MAX_NAME_LENGTH = 200
LAYOUT_VERSION = 1

_PHONE_WORDS = frozenset(
    {
        "phone",
        "phones",
        "mobile",
        "mob",
        "tel",
        "telephone",
        "cell",
        "cellphone",
        "cellular",
        "landline",
        "ph",
    }
)
# Splits "FirstPhone", "phone_2", "Home Tel", "MOBILENo" into words.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SYSTEM_BY_KEY = {name.casefold(): name for name in SYSTEM_FIELDS}


def name_words(name: str) -> list[str]:
    """The lower-case words of a field name ("FirstPhone" -> ["first", "phone"])."""
    return [w.lower() for w in _WORD.findall(name)]


def is_phone_name(name: str) -> bool:
    """Whether a field called ``name`` is likely a phone field ("FirstPhone", "Mobile", "Tel 2")."""
    words = name_words(name)
    if any(w in _PHONE_WORDS for w in words):
        return True
    # Run-together lower-case names such as "homephone", "mobileno", "worktel".
    squashed = "".join(words)
    return any(
        squashed.startswith(w) or squashed.endswith(w)
        for w in ("phone", "mobile", "telephone", "cellphone")
    )


def system_field(name: str) -> str | None:
    """The system field ``name`` stands for (any letter case), or None."""
    return _SYSTEM_BY_KEY.get(name.strip().casefold())


class FieldKind(Enum):
    """What a field holds, and so how its values are checked and normalised."""

    TEXT = "text"
    PHONE = "phone"  # dialable: the PBX needs a number in at least one of these (else 102)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One template field: its key as the PBX knows it, what it holds, and how to check it.

    Build specs with ``field_spec``; it is the one place where a field's kind is decided.
    """

    name: str  # the key sent in the insert body
    kind: FieldKind = FieldKind.TEXT
    required: bool = False
    max_length: int = DEFAULT_MAX_LENGTH
    label: str = ""  # what people see; empty: the key, made readable

    @property
    def phone(self) -> bool:
        return self.kind is FieldKind.PHONE

    @property
    def title(self) -> str:
        """The field's name for people: its label, else its key made readable."""
        return readable_label(self.label or self.name)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "phone": self.phone,  # read by versions that know no kinds
            "required": self.required,
            "max_length": self.max_length,
        }
        if self.label:
            data["label"] = self.label
        return data

    @classmethod
    def from_dict(cls, data: object) -> FieldSpec | None:
        """A spec from stored data, or None when ``data`` is not a usable field."""
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, Mapping):
            return None
        name = data.get("name")
        if not isinstance(name, str):
            return None
        max_length = data.get("max_length", DEFAULT_MAX_LENGTH)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            max_length = DEFAULT_MAX_LENGTH
        kind = _KINDS.get(str(data.get("kind", "")))
        phone = data.get("phone", False)
        required = data.get("required", False)
        label = data.get("label", "")
        with contextlib.suppress(ValueError):
            return field_spec(
                name,
                kind=kind,
                phone=phone if isinstance(phone, bool) and kind is None else None,
                required=required if isinstance(required, bool) else False,
                max_length=max_length,
                label=label if isinstance(label, str) else "",
                infer=False,
            )
        return None


_KINDS = {kind.value: kind for kind in FieldKind}


def field_spec(
    name: str,
    *,
    kind: FieldKind | None = None,
    phone: bool | None = None,
    required: bool = False,
    max_length: int = DEFAULT_MAX_LENGTH,
    label: str = "",
    infer: bool = True,
) -> FieldSpec:
    """The spec of a field called ``name`` (key) and ``label``; ValueError for a name that
    cannot be a template field (empty, too long, with control characters).

    ``kind`` or ``phone`` say what it holds; when neither does and ``infer`` is on, the key
    and label decide (``is_phone_name``: the one rule for app, grid and ``send``).
    """
    key = " ".join(str(name).split())
    if not key or len(key) > MAX_NAME_LENGTH or not key.isprintable():
        raise ValueError(f"not a field name: {key[:40]!r}")
    text = " ".join(str(label).split())[:MAX_NAME_LENGTH] if label else ""
    if kind is None and phone is not None:
        kind = FieldKind.PHONE if phone else FieldKind.TEXT
    if kind is None:
        dialable = infer and (is_phone_name(key) or (bool(text) and is_phone_name(text)))
        kind = FieldKind.PHONE if dialable else FieldKind.TEXT
    return FieldSpec(key, kind, required, max(1, int(max_length)), "" if text == key else text)


def readable_label(text: str) -> str:
    """A key as people read it: ``name_first`` -> "Name first", ``StreetAddress`` ->
    "Street address", ``FirstPhone`` -> "First phone"; text with spaces is kept as it is."""
    if " " in text.strip() or not text:
        return text.strip()
    words = name_words(text)
    if not words:
        return text
    shown = " ".join(words)
    return shown[0].upper() + shown[1:]


class Origin(Enum):
    """Where a layout came from."""

    PBX = "pbx"  # the PBX's field calls (getFieldDefn / getFieldList)
    PERSON = "person"  # typed or taken from a header row in the layout dialog
    DEFAULT = "default"  # nothing is known: the documented sample fields


@dataclass(frozen=True, slots=True)
class FieldLayout:
    """The fields of one template, in order. System fields are not listed: they always apply.

    ``confirmed`` is False while a person has not yet seen which fields were taken for phone
    fields (a layout read from the PBX, whose answer does not say which fields are dialable).
    """

    fields: tuple[FieldSpec, ...]
    origin: Origin = Origin.PERSON
    confirmed: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def phone_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.phone)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def mappable_names(self) -> tuple[str, ...]:
        """The template's fields, then the system fields: every target a column can map to."""
        own = self.names
        return own + tuple(s for s in SYSTEM_FIELDS if s not in own)

    def spec(self, name: str) -> FieldSpec | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form for the settings file."""
        return {
            "version": LAYOUT_VERSION,
            "fields": [f.to_dict() for f in self.fields],
            "origin": self.origin.value,
            "confirmed": self.confirmed,
        }

    def confirmed_as_is(self) -> FieldLayout:
        return FieldLayout(self.fields, self.origin, confirmed=True)

    @classmethod
    def from_dict(cls, data: object) -> FieldLayout:
        """The layout stored in ``data``; anything unusable gives the default layout."""
        try:
            if not isinstance(data, Mapping):
                return default_layout()
            raw_fields = data.get("fields")
            if not isinstance(raw_fields, list | tuple):
                return default_layout()
            layout = make_layout(FieldSpec.from_dict(item) for item in raw_fields)
            if not layout.fields:
                return default_layout()
            origin = _ORIGINS.get(str(data.get("origin")), Origin.PERSON)
            return FieldLayout(layout.fields, origin, data.get("confirmed") is not False)
        except Exception:  # a corrupt settings entry must never stop the app
            return default_layout()


_ORIGINS = {origin.value: origin for origin in Origin}


def make_layout(
    specs: Iterable[FieldSpec | None], origin: Origin = Origin.PERSON, *, confirmed: bool = True
) -> FieldLayout:
    """A layout of ``specs`` without duplicate names (first wins), system fields and Nones."""
    seen: set[str] = set()
    kept: list[FieldSpec] = []
    for spec in specs:
        if spec is None:
            continue
        key = spec.name.casefold()
        if key in seen or key in _SYSTEM_BY_KEY:
            continue
        seen.add(key)
        kept.append(spec)
    return FieldLayout(tuple(kept), origin, confirmed)


def default_layout() -> FieldLayout:
    """The layout used when nothing is known about a template: the documented sample fields."""
    return make_layout((field_spec(n) for n in DEFAULT_FIELD_NAMES), Origin.DEFAULT)


def layout_from_pbx(
    fields: Iterable[tuple[str, str, bool]], stored: FieldLayout | None = None
) -> FieldLayout:
    """The layout of the PBX's fields ``(key, label, required)``, in the PBX's order.

    A field the ``stored`` layout also has keeps what a person chose for it there (its kind,
    length); a new one gets the kind its key and label suggest. The result is confirmed only when
    the stored one was, and came from the PBX with the very same keys: new keys mean new guesses
    for a person to look at.
    """
    known = {f.name.casefold(): f for f in stored.fields} if stored is not None else {}
    specs = []
    for key, label, required in fields:
        try:
            spec = field_spec(key, label=label, required=required)
        except ValueError:
            continue
        before = known.get(spec.name.casefold())
        if before is not None:
            spec = FieldSpec(spec.name, before.kind, required, before.max_length, spec.label)
        specs.append(spec)
    layout = make_layout(specs, Origin.PBX)
    same_keys = (
        stored is not None
        and stored.origin is Origin.PBX
        and [f.name.casefold() for f in stored.fields] == [f.name.casefold() for f in layout.fields]
    )
    confirmed = same_keys and stored is not None and stored.confirmed
    return FieldLayout(layout.fields, Origin.PBX, confirmed)


def layout_from_header(cells: list[str]) -> FieldLayout:
    """A layout named after a header row; names with phone/mobile/tel/cell are phone fields."""
    return make_layout((_spec_or_none(str(cell)) for cell in cells), Origin.PERSON)


def _spec_or_none(name: str) -> FieldSpec | None:
    try:
        return field_spec(name)
    except ValueError:
        return None


def layout_key(server: str, template_id: int | str) -> str:
    """The key under which the settings keep the layout of one server's template."""
    return f"{server.strip().rstrip('/')}|{template_id}"
