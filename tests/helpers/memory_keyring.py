"""A keyring backend that keeps its entries in a dict, for tests of what is stored where."""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps its entries in a dict (a stand-in for the OS one)."""

    # keyring offers every imported backend class when it picks one by itself; this one is only
    # ever handed over by a test, so it is never viable (else a test of the real OS keyring could
    # end up on this dict).
    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("a test stand-in, never chosen by keyring itself")

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)
