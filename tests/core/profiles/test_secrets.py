"""API keys in the real OS keyring, and the plain message when there is none."""

from __future__ import annotations

import uuid

import pytest
from keyring.backends.fail import Keyring as FailKeyring

from noojee_desk.core.profiles.secrets import KeyringUnavailable, KeyStore


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
