"""Field layouts of campaign templates: field names in order, phone fields, required fields."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One template field: its name as the PBX knows it, and how to check its values."""

    name: str
    phone: bool = False
    required: bool = False
    max_length: int = DEFAULT_MAX_LENGTH

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phone": self.phone,
            "required": self.required,
            "max_length": self.max_length,
        }

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
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
            return None
        max_length = data.get("max_length", DEFAULT_MAX_LENGTH)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            max_length = DEFAULT_MAX_LENGTH
        phone = data.get("phone", False)
        required = data.get("required", False)
        return cls(
            name=name,
            phone=phone if isinstance(phone, bool) else False,
            required=required if isinstance(required, bool) else False,
            max_length=max_length,
        )


@dataclass(frozen=True, slots=True)
class FieldLayout:
    """The fields of one template, in order. System fields are not listed: they always apply."""

    fields: tuple[FieldSpec, ...]

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
        return {"version": LAYOUT_VERSION, "fields": [f.to_dict() for f in self.fields]}

    @classmethod
    def from_dict(cls, data: object) -> FieldLayout:
        """The layout stored in ``data``; anything unusable gives the default layout."""
        try:
            if not isinstance(data, Mapping):
                return default_layout()
            raw_fields = data.get("fields")
            if not isinstance(raw_fields, list | tuple):
                return default_layout()
            specs = [FieldSpec.from_dict(item) for item in raw_fields]
            layout = make_layout(s for s in specs if s is not None)
            return layout if layout.fields else default_layout()
        except Exception:  # a corrupt settings entry must never stop the app
            return default_layout()


def make_layout(specs: Iterable[FieldSpec]) -> FieldLayout:
    """A layout of ``specs`` without duplicate names (first wins) and without system fields."""
    seen: set[str] = set()
    kept: list[FieldSpec] = []
    for spec in specs:
        key = spec.name.casefold()
        if key in seen or key in _SYSTEM_BY_KEY:
            continue
        seen.add(key)
        kept.append(spec)
    return FieldLayout(tuple(kept))


def default_layout() -> FieldLayout:
    """The layout used when nothing is known about a template: the documented sample fields."""
    return FieldLayout(tuple(FieldSpec(n, phone=is_phone_name(n)) for n in DEFAULT_FIELD_NAMES))


def layout_from_header(cells: list[str]) -> FieldLayout:
    """A layout named after a header row; names with phone/mobile/tel/cell are phone fields."""
    specs = []
    for cell in cells:
        name = " ".join(str(cell).split())
        if not name or len(name) > MAX_NAME_LENGTH:
            continue
        specs.append(FieldSpec(name, phone=is_phone_name(name)))
    return make_layout(specs)


def layout_key(server: str, template_id: int | str) -> str:
    """The key under which the settings keep the layout of one server's template."""
    return f"{server.strip().rstrip('/')}|{template_id}"
