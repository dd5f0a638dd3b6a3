"""API keys in the OS keyring (one entry per profile), off the event loop; session-only fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import keyring
import keyring.errors

from noojee_desk import APP_ID

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE = APP_ID


class KeyringUnavailable(Exception):
    """No working keyring: the message says so plainly and what can be done."""


def _explain(exc: BaseException) -> str:
    return (
        "This computer has no working password store for the API key "
        f"({type(exc).__name__}: {exc}). On Linux install and unlock a Secret Service keyring "
        "(e.g. GNOME Keyring or KWallet). Until then the key can be used for this session only."
    )


class KeyStore:
    """Reads and writes keys of profiles; every call runs in an executor thread."""

    def __init__(self, service: str = SERVICE, backend: Any | None = None) -> None:
        self.service = service
        self._backend = backend
        self._session: dict[str, str] = {}  # keys the user chose to keep in memory only

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
        return not any(bad in name for bad in ("fail", "null", "plaintext"))

    async def get(self, profile: str) -> str | None:
        if profile in self._session:
            return self._session[profile]
        return await self._run(lambda: self._keyring().get_password(self.service, profile))

    async def set(self, profile: str, key: str) -> None:
        self._session.pop(profile, None)
        await self._run(lambda: self._keyring().set_password(self.service, profile, key))

    async def delete(self, profile: str) -> None:
        """Forget the key of ``profile`` (in memory and in the keyring); no error if absent."""
        self._session.pop(profile, None)

        def remove() -> None:
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                self._keyring().delete_password(self.service, profile)

        await self._run(remove)

    def set_for_session(self, profile: str, key: str) -> None:
        """Keep the key in memory until the app quits; nothing is written anywhere."""
        self._session[profile] = key

    def is_session_only(self, profile: str) -> bool:
        return profile in self._session
