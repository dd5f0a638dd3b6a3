"""API keys in the real OS keyring, and the plain message when there is none."""

from __future__ import annotations

import uuid

import pytest
from helpers.memory_keyring import MemoryKeyring
from keyring.backends.fail import Keyring as FailKeyring

from noojee_desk.core.profiles.secrets import KeyringUnavailable, KeyStore, writes_plain_file


@pytest.mark.asyncio
@pytest.mark.keyring
async def test_round_trip_through_the_os_keyring(os_keyring: object) -> None:
    store = KeyStore(service=f"noojee-desk-test-{uuid.uuid4().hex[:8]}")
    assert store.usable()
    assert await store.get("Prod") is None
    await store.set("Prod", "s3cret-key")
    assert await store.get("Prod") == "s3cret-key"
    await store.set("Prod", "rotated")
    assert await store.get("Prod") == "rotated"
    await store.delete("Prod")
    assert await store.get("Prod") is None
    await store.delete("Prod")  # forgetting twice is fine


@pytest.mark.asyncio
async def test_no_backend_says_so_and_offers_session_only() -> None:
    store = KeyStore(backend=FailKeyring())
    assert not store.usable()
    with pytest.raises(KeyringUnavailable, match="password store"):
        await store.set("Prod", "k")
    with pytest.raises(KeyringUnavailable, match="this session only"):
        await store.get("Prod")
    store.set_for_session("Prod", "k")
    assert store.is_session_only("Prod")
    assert await store.get("Prod") == "k"


@pytest.mark.asyncio
async def test_a_stored_key_is_bound_to_the_address_it_was_saved_for() -> None:
    backend = MemoryKeyring()
    store = KeyStore(service="t", backend=backend)
    await store.set("Prod", "s3cret-key", "https://pbx.example.com")
    assert await store.get("Prod", server="https://PBX.example.com/") == "s3cret-key"
    assert await store.get("Prod", server="pbx.example.com") == "s3cret-key"
    assert await store.get("Prod", server="https://evil.example") is None
    assert await store.get("Prod", server="https://pbx.example.com.evil.example") is None
    assert "s3cret-key" not in backend.entries[("t.address", "Prod")]  # only the address
    await store.delete("Prod")
    assert backend.entries == {}


@pytest.mark.asyncio
async def test_a_key_saved_before_binding_is_bound_where_it_is_first_used() -> None:
    backend = MemoryKeyring()
    backend.set_password("t", "Prod", "old-key")
    store = KeyStore(service="t", backend=backend)
    assert await store.get("Prod", server="https://pbx.example.com") == "old-key"
    assert await store.get("Prod", server="https://other.example") is None


@pytest.mark.asyncio
async def test_a_session_key_is_bound_too() -> None:
    store = KeyStore(backend=FailKeyring())
    store.set_for_session("Prod", "k-session", "https://pbx.example.com")
    assert await store.get("Prod", server="https://pbx.example.com") == "k-session"
    assert await store.get("Prod", server="https://evil.example") is None


def backend_named(module: str, name: str) -> MemoryKeyring:
    """A working in-memory backend that looks like ``module.name`` to whoever asks."""
    kind = type(name, (MemoryKeyring,), {"__module__": module})
    made: MemoryKeyring = kind()
    return made


PLAIN_FILE = "writes keys to a plain file; the key is kept for this session only"


@pytest.mark.asyncio
async def test_a_store_that_writes_a_plain_file_is_refused_unless_opted_in() -> None:
    backend = backend_named("keyrings.alt.file", "PlaintextKeyring")
    store = KeyStore(service="t", backend=backend)
    assert not store.usable()
    with pytest.raises(KeyringUnavailable, match=PLAIN_FILE) as refused:
        await store.set("Prod", "s3cret-key", "https://pbx.example.com")
    assert "keyrings.alt.file.PlaintextKeyring" in str(refused.value)
    assert "allow_plaintext_keyring" in str(refused.value)
    assert backend.entries == {}  # nothing was written
    opted_in = KeyStore(service="t", backend=backend, allow_plaintext=True)
    await opted_in.set("Prod", "s3cret-key", "https://pbx.example.com")
    assert await opted_in.get("Prod", server="https://pbx.example.com") == "s3cret-key"


@pytest.mark.parametrize(
    ("module", "name", "plain"),
    [
        ("keyrings.alt.file", "PlaintextKeyring", True),
        ("keyrings.alt.pyfs", "PlaintextKeyring", True),
        ("keyrings.alt.file", "EncryptedKeyring", False),
        ("keyrings.alt.multi", "MultipartKeyringWrapper", True),
        ("keyrings.alt.Windows", "RegistryKeyring", False),
        ("keyrings.alt.Gnome", "Keyring", False),
        ("somewhere.else", "PlaintextStore", True),
        ("keyring.backends.SecretService", "Keyring", False),
        ("keyrings.alternative", "Keyring", False),  # another package, not keyrings.alt
    ],
)
def test_which_stores_write_keys_to_a_plain_file(module: str, name: str, plain: bool) -> None:
    assert writes_plain_file(backend_named(module, name)) is plain
    assert KeyStore(backend=backend_named(module, name)).usable() is not plain


def test_a_chain_of_stores_is_judged_by_the_one_a_key_goes_to() -> None:
    plain = backend_named("keyrings.alt.file", "PlaintextKeyring")
    real = backend_named("keyring.backends.SecretService", "Keyring")
    first_plain = type("ChainerBackend", (MemoryKeyring,), {"backends": [plain, real]})()
    first_real = type("ChainerBackend", (MemoryKeyring,), {"backends": [real, plain]})()
    assert writes_plain_file(first_plain)
    assert not writes_plain_file(first_real)
