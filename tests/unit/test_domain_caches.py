"""Every domain cache keeps the guard of :mod:`authsvc.cache`: a fill overtaken by an
invalidation is not stored, and a lookup started after the invalidation is not answered with it.

Each cache is driven through its own entry point and its own revocation listener
(``on_event``) or ``clear``, over a fake source of truth whose first read is held after it read
(:class:`Source`): the window in which the state changes and the event arrives. The API tests
(tests/api/test_cache_races.py) race the same caches against the real database and endpoints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from authsvc.cache import MISSING
from authsvc.clock import FrozenClock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import TrustedIssuer
from authsvc.issuers.cache import IssuerCache
from authsvc.issuers.state import IssuerState, state_of
from authsvc.keys.cache import GraceSecret, KeyCache
from authsvc.keys.secret import KeyHasher
from authsvc.keys.state import KeyState
from authsvc.keys.store import Chain, KeyStore
from authsvc.revocation.events import Kind, RevocationEvent
from authsvc.scopes import Grant, parse_scope
from authsvc.signing.crypto import ResolvedKey
from authsvc.signing.keyring import ACTIVE, Keyring, KeySet, PublicKey
from authsvc.tenants.policy import TenantCache, TenantPolicy
from authsvc.tokens.jwt import Rejected
from authsvc.tokens.reader import ReadToken, TokenReader

T = "ten_1"
K = "key_1"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
NO_DB = cast(SessionFactory, None)  # every load below is a fake source


def no_count(_name: str, _outcome: str) -> None:
    return None


def event(kind: Kind, value: str) -> RevocationEvent:
    return RevocationEvent(T, kind, value, NOW)


class Source:
    """A fake source of truth: :meth:`read` answers the current :attr:`value`; the first read
    is held *after* reading until :meth:`release`."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.reads = 0
        self.reading = asyncio.Event()
        self._released = asyncio.Event()

    async def read(self) -> Any:
        self.reads += 1
        value = self.value
        if self.reads == 1:
            self.reading.set()
            await self._released.wait()
        return value

    def release(self) -> None:
        self._released.set()


async def race(
    source: Source, get: Callable[[], Awaitable[Any]], new: Any, invalidate: Callable[[], None]
) -> tuple[Any, Any, Any]:
    """The source changes to ``new`` and ``invalidate`` runs while the first ``get`` is held
    after reading; returns (that get, a get started after the invalidation while the first is
    still held, a get once both are done)."""
    first = asyncio.create_task(get())
    await asyncio.wait_for(source.reading.wait(), timeout=5)
    source.value = new
    invalidate()
    second = asyncio.create_task(get())
    for _ in range(5):
        await asyncio.sleep(0)
    source.release()
    return await first, await second, await get()


# --- KeyCache ------------------------------------------------------------------------------


def key_state(enabled: bool) -> KeyState:
    return KeyState(
        id=K,
        tenant_id=T,
        parent_id=None,
        grants=(Grant(parse_scope("PIPES:READ:x")),),
        ratelimits=(),
        identity=None,
        expires_at=None,
        enabled=enabled,
        revoked=False,
    )


class FakeKeyStore:
    """``by_id`` reads ``lineage``; ``by_secret`` reads ``secret`` (and the lineage as is)."""

    def __init__(self, lineage: Source, secret: Source | None = None) -> None:
        self.lineage, self.secret = lineage, secret

    async def by_id(self, tenant_id: str | None, key_id: str) -> Chain | None:
        enabled = await self.lineage.read() if self.secret is None else self.lineage.value
        return Chain((key_state(enabled),), {})

    async def by_secret(self, digests: Sequence[str]) -> tuple[Chain, float | None] | None:
        assert self.secret is not None
        grace_until = await self.secret.read()
        return Chain((key_state(self.lineage.value),), {}), grace_until


def key_cache(store: FakeKeyStore) -> KeyCache:
    return KeyCache(cast(KeyStore, store), KeyHasher(b"s" * 32), count=no_count)


@pytest.mark.parametrize("how", ["event", "clear"])
async def test_key_state_read_before_a_key_event_is_not_stored_nor_served_after_it(
    how: str,
) -> None:
    source = Source(True)
    cache = key_cache(FakeKeyStore(source))
    invalidate = cache.clear if how == "clear" else lambda: cache.on_event(event("key", K))

    first, second, third = await race(source, lambda: cache.lineage(K, T), False, invalidate)
    assert first.key.enabled is True  # read before the change: it answers its own request
    assert (second.key.enabled, third.key.enabled) == (False, False)
    assert source.reads == 2  # the fresh read was stored, the stale one was not
    assert cache.states.peek(K) == key_state(False)


@pytest.mark.parametrize("how", ["event", "clear"])
async def test_key_secret_read_before_a_reroll_is_not_stored_nor_served_after_it(
    how: str,
) -> None:
    lineage, secret = Source(True), Source(None)
    cache = key_cache(FakeKeyStore(lineage, secret))
    api_key = "ask_whatever"
    digest = cache.digest(api_key)
    grace_end = time.time() + 60

    def reroll() -> None:  # the secret becomes the previous one, valid until grace_end
        if how == "clear":
            cache.clear()
        else:
            cache.on_event(event("key", K))

    first, second, third = await race(
        secret, lambda: cache.by_secret(api_key, digest), grace_end, reroll
    )
    assert first.grace_until is None
    assert (second.grace_until, third.grace_until) == (grace_end, grace_end)
    assert secret.reads == 2
    assert cache.secrets.peek(digest) == GraceSecret(key_state(True), grace_end)


async def test_key_state_fill_overtaken_by_an_identity_event_stores_no_state() -> None:
    source = Source(True)
    cache = key_cache(FakeKeyStore(source))
    task = asyncio.create_task(cache.lineage(K, T))
    await source.reading.wait()
    cache.on_event(event("key", "identity:org-1"))  # limits of an identity changed
    source.release()
    await task
    assert cache.identities.peek((T, "org-1")) is MISSING
    # the key states of that fill are guarded by their own generation, untouched here
    assert cache.states.peek(K) == key_state(True)


# --- TenantCache ---------------------------------------------------------------------------


def policy(enabled: bool) -> TenantPolicy:
    return TenantPolicy(
        id=T,
        slug="acme",
        name="Acme",
        enabled=enabled,
        issuer="http://x/t/acme",
        audiences=("http://x/t/acme",),
        default_token_ttl_s=900,
        max_token_ttl_s=3600,
        signing_alg="ES256",
        signing_key_rotation_s=0,
        allow_query_token=False,
        token_horizon_at=None,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_tenant_read_before_a_tenant_event_is_not_stored_nor_served_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = Source(True)
    cache = TenantCache(NO_DB, "http://x", count=no_count)

    async def load(_tenant_id: str) -> TenantPolicy:
        return policy(await source.read())

    monkeypatch.setattr(cache, "_load", load)
    first, second, third = await race(
        source, lambda: cache.get(T), False, lambda: cache.on_event(event("tenant", T))
    )
    assert first is not None
    assert first.enabled is True
    assert (second.enabled, third.enabled) == (False, False)
    assert source.reads == 2


# --- Keyring -------------------------------------------------------------------------------


def key_set(present: bool) -> KeySet:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    keys = {}
    if present:
        keys["kid-1"] = PublicKey(ResolvedKey("kid-1", "ES256", public), ACTIVE, None, {})
    return KeySet(keys, time.monotonic())


async def test_key_set_read_before_a_signing_key_removal_is_not_stored_nor_served_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = Source(True)
    keyring = Keyring(NO_DB, {}, FrozenClock(NOW), count=no_count)

    async def load(_tenant_id: str) -> KeySet:
        return key_set(await source.read())

    monkeypatch.setattr(keyring, "_load_public", load)
    first, second, third = await race(
        source,
        lambda: keyring.public_key(T, "kid-1"),
        False,
        lambda: keyring.on_event(event("signing_key", "kid-1")),
    )
    assert first is not None
    assert (second, third) == (None, None)
    assert source.reads == 2


# --- IssuerCache ---------------------------------------------------------------------------


def issuer(enabled: bool) -> IssuerState:
    row = TrustedIssuer(
        id="tis_1",
        tenant_id=T,
        issuer="https://idp.example",
        jwks_uri=None,
        jwks=None,
        audiences=["aud"],
        algorithms=["RS256"],
        subject_claim="sub",
        conditions={},
        grants=[{"scope": "PIPES:READ:x", "fixed_params": {}}],
        ttl_s=None,
        limits=None,
        ratelimits=[],
        allowed_origins=[],
        enabled=enabled,
        created_at=NOW,
        updated_at=NOW,
    )
    return state_of(row)


@pytest.mark.parametrize("change", ["disable", "delete"])
async def test_issuers_read_before_an_issuer_event_are_not_stored_nor_served_after_it(
    monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    source = Source((issuer(True),))
    cache = IssuerCache(NO_DB, count=no_count)

    async def load(_tenant_id: str) -> tuple[IssuerState, ...]:
        return cast(tuple[IssuerState, ...], await source.read())

    monkeypatch.setattr(cache, "_load", load)
    new = (dataclasses.replace(issuer(True), enabled=False),) if change == "disable" else ()
    first, second, third = await race(
        source,
        lambda: cache.by_id(T, "tis_1"),
        new,
        lambda: cache.on_event(event("issuer", "tis_1")),
    )
    assert first is not None
    assert first.enabled is True
    for later in (second, third):
        assert later is None if change == "delete" else later.enabled is False
    assert source.reads == 2


# --- TokenReader ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["signing_key", "tenant"])
async def test_token_read_before_a_signing_key_or_tenant_event_is_not_stored(
    monkeypatch: pytest.MonkeyPatch, kind: Kind
) -> None:
    clock = FrozenClock(NOW)
    good = ReadToken(
        tenant_id=T,
        sub="u",
        client_id=K,
        jti="jti-1",
        iat=clock.time(),
        exp=clock.time() + 900,
        grants=(),
        chain=(),
        audiences=(),
        rps=None,
        ratelimits=(),
        name=None,
        claims={},
    )
    gone = Rejected("INVALID_SIGNATURE", "unknown kid")
    source = Source(good)
    reader = TokenReader(cast(Keyring, None), clock, count=no_count)

    async def read(_token: str, _tenant: TenantPolicy) -> ReadToken | Rejected:
        return cast(ReadToken | Rejected, await source.read())

    monkeypatch.setattr(reader, "_read", read)
    token = "a.b.c"
    first, second, third = await race(
        source,
        lambda: reader.read(token, policy(True)),
        gone,
        lambda: reader.on_event(event(kind, "kid-1")),
    )
    assert first is good
    assert (second, third) == (gone, gone)
    assert reader._reads.peek((T, sha256(token.encode()).digest())) is MISSING
    assert len(reader) == 0
