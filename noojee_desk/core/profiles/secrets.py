"""API keys in the OS keyring (one entry per profile), off the event loop; session-only fallback.

Each key is bound to the server address it was saved for (a second entry holds the address):
asked for another address, the store has no key, so a key never travels to a host it was not
given for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import keyring
import keyring.errors

from noojee_desk import APP_ID
from noojee_desk.core.delivery.api import ConfigError, normalise_base_url

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE = APP_ID


def address_of(server_url: str) -> str:
    """The server address a key is bound to, in one spelling for every way of typing it."""
    try:
        base = normalise_base_url(server_url)
    except ConfigError:
        base = (server_url or "").strip()
    scheme, _, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def same_address(one: str, other: str) -> bool:
    return address_of(one) == address_of(other)


class KeyringUnavailable(Exception):
    """No working keyring: the message says so plainly and what can be done."""


#: keyrings.alt backends that keep keys out of plain files (encrypted, or the OS's own store).
_ALT_PROTECTED_MODULES = ("keyrings.alt.Gnome", "keyrings.alt.Windows")


def writes_plain_file(backend: object) -> bool:
    """Whether ``backend`` stores keys readably in a plain file: keyrings.alt's
    ``PlaintextKeyring`` and its kind (any class named "Plaintext", any keyrings.alt backend
    that is not an encrypted one). For keyring's chain of backends, the first one, which is
    where a key goes."""
    chain = getattr(type(backend), "backends", None)
    if isinstance(chain, list) and chain:
        backend = chain[0]
    kind = type(backend)
    module, name = kind.__module__, kind.__name__
    if "plaintext" in name.lower():
        return True
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        return "encrypted" not in name.lower() and not module.startswith(_ALT_PROTECTED_MODULES)
    return False


def _plain_file(backend: object) -> str:
    kind = type(backend)
    return (
        "The only password store here writes keys to a plain file; the key is kept for this "
        f"session only (the store is {kind.__module__}.{kind.__name__}). Install and unlock a "
        "Secret Service keyring (e.g. GNOME Keyring or KWallet), or set "
        '"allow_plaintext_keyring": true in settings.json to store keys in that file anyway.'
    )


def _explain(exc: BaseException) -> str:
    return (
        "This computer has no working password store for the API key "
        f"({type(exc).__name__}: {exc}). On Linux install and unlock a Secret Service keyring "
        "(e.g. GNOME Keyring or KWallet). Until then the key can be used for this session only."
    )


class KeyStore:
    """Reads and writes keys of profiles; every call runs in an executor thread."""

    def __init__(
        self, service: str = SERVICE, backend: Any | None = None, *, allow_plaintext: bool = False
    ) -> None:
        self.service = service
        #: Store keys even in a backend that writes them to a plain file (the user opted in).
        self.allow_plaintext = allow_plaintext
        self.address_service = f"{service}.address"  # the address each key was saved for
        self._backend = backend
        # Keys the user chose to keep in memory only, with the address each was given for.
        self._session: dict[str, tuple[str, str | None]] = {}

    def _keyring(self) -> Any:
        return self._backend if self._backend is not None else keyring.get_keyring()

    async def _run(self, func: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, func)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(_explain(exc)) from exc
        except (RuntimeError, OSError) as exc:  # e.g. D-Bus not running, locked collection
            raise KeyringUnavailable(_explain(exc)) from exc

    def backend_name(self) -> str:
        backend = self._keyring()
        return f"{type(backend).__module__}.{type(backend).__name__}"

    def usable(self) -> bool:
        """Whether a real (not the 'fail' or plaintext) backend is configured."""
        name = self.backend_name().lower()
        return not any(bad in name for bad in ("fail", "null")) and not writes_plain_file(
            self._keyring()
        )

    async def get(self, profile: str, server: str | None = None) -> str | None:
        """The key of ``profile``; with ``server``, only when it was saved for that address
        (None otherwise: the key is asked for again). A key saved before keys were bound to an
        address is taken as bound to the address it is first asked for."""
        if profile in self._session:
            key, bound = self._session[profile]
            if server is not None and bound is not None and not same_address(bound, server):
                log.warning("the key of %r was given for another server address", profile)
                return None
            return key

        def read() -> str | None:
            backend = self._keyring()
            key = backend.get_password(self.service, profile)
            if key is None or server is None:
                return key
            bound = backend.get_password(self.address_service, profile)
            if bound is None:
                backend.set_password(self.address_service, profile, address_of(server))
                return key
            if not same_address(bound, server):
                log.warning("the stored key of %r was saved for another server address", profile)
                return None
            return key

        return await self._run(read)

    async def set(self, profile: str, key: str, server: str | None = None) -> None:
        """Store the key of ``profile``, bound to ``server`` when given.

        Raises KeyringUnavailable when there is no working store, and when the only one writes
        keys to a plain file (unless ``allow_plaintext``)."""
        self._session.pop(profile, None)

        def write() -> None:
            backend = self._keyring()
            if not self.allow_plaintext and writes_plain_file(backend):
                raise KeyringUnavailable(_plain_file(backend))
            backend.set_password(self.service, profile, key)
            if server is not None:
                backend.set_password(self.address_service, profile, address_of(server))
            else:
                with contextlib.suppress(keyring.errors.PasswordDeleteError):
                    backend.delete_password(self.address_service, profile)

        await self._run(write)

    async def delete(self, profile: str) -> None:
        """Forget the key of ``profile`` (in memory and in the keyring); no error if absent."""
        self._session.pop(profile, None)

        def remove() -> None:
            for service in (self.service, self.address_service):
                with contextlib.suppress(keyring.errors.PasswordDeleteError):
                    self._keyring().delete_password(service, profile)

        await self._run(remove)

    def set_for_session(self, profile: str, key: str, server: str | None = None) -> None:
        """Keep the key in memory until the app quits; nothing is written anywhere."""
        self._session[profile] = (key, server)

    def is_session_only(self, profile: str) -> bool:
        return profile in self._session
