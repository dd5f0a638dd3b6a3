"""A connection file (``.noojee``): one connection to hand to a colleague or a desk, never a key.

It holds the address, name, CA bundle path, time zone and default picks, as JSON. Reading is
strict: a file that is large, not JSON, of the wrong types, carrying credentials in the address,
or with any key this version does not know (an ``api_key``, say) is refused with the reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from noojee_desk.core.files import atomic_write
from noojee_desk.core.profiles.managed import ConnectionRefused, ConnectionSpec, read_connection
from noojee_desk.core.profiles.settings import Profile, SettingsDamaged, parse

SUFFIX = ".noojee"
FORMAT_KEY = "noojee_desk_connection"
FORMAT_VERSION = 1
MAX_BYTES = 64_000


class ConnectionFileRefused(ValueError):
    """The file cannot be used as a connection; the message says why, for a person."""


def dumps(profile: Profile) -> bytes:
    """The connection file's bytes for ``profile`` (its key is in the keyring, never here)."""
    data = {FORMAT_KEY: FORMAT_VERSION, **ConnectionSpec.of(profile).as_dict()}
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write(path: str | os.PathLike[str], profile: Profile) -> Path:
    """Write ``profile`` as a connection file (``.noojee`` added when missing); its path."""
    target = Path(path)
    if target.suffix.lower() != SUFFIX:
        target = target.with_name(target.name + SUFFIX)
    with atomic_write(target, "wb") as handle:
        handle.write(dumps(profile))
    return target


def loads(data: bytes) -> ConnectionSpec:
    """The connection in a file's bytes; ConnectionFileRefused says what is wrong."""
    try:
        if len(data) > MAX_BYTES:
            raise ConnectionRefused(f"it is larger than {MAX_BYTES // 1000} kB")
        try:
            raw, _ = parse(data)
        except json.JSONDecodeError:
            raise ConnectionRefused("it is not JSON") from None
        marker = raw.pop(FORMAT_KEY, None)
        raw.pop("version", None)
        if marker is None:
            raise ConnectionRefused("it is not a Noojee Desk connection file")
        if not isinstance(marker, int) or isinstance(marker, bool) or marker < 1:
            raise ConnectionRefused(f"{FORMAT_KEY} is not a version number")
        if marker > FORMAT_VERSION:
            raise ConnectionRefused("a newer Noojee Desk wrote it; update this one")
        return read_connection(raw)
    except (ConnectionRefused, SettingsDamaged) as exc:
        raise ConnectionFileRefused(f"This connection file cannot be used: {exc}.") from None


def read(path: str | os.PathLike[str]) -> ConnectionSpec:
    """The connection in the file at ``path``; ConnectionFileRefused when it cannot be used."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConnectionFileRefused(
            f"The connection file could not be read: {exc.strerror or exc}."
        ) from None
    return loads(data)
