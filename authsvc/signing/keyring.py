"""In-process caches of signing keys: public keys for verification, the active signer.

Public keys
-----------
Per tenant, a map ``kid → PublicKey`` (the parsed key with the one algorithm pinned to it, its
state and ``remove_after``). A verification with a known kid is a dict lookup: no database,
no key parsing. An unknown kid triggers a reload of the tenant's set, at most once per
``refresh_interval_s`` per tenant, through a single flight (concurrent misses share one query):
a token that names a fresh kid (a rotation done by another instance) is accepted within a
second, while a flood of tokens with made-up kids costs the database one query per tenant per
second, not one per token. A retired key is refused from its ``remove_after`` on, even before
the background task deletes it. If a reload fails (database down) the previous set keeps
serving.

Signer
------
The active private key of a tenant, decrypted once and kept for ``signer_ttl_s`` (60 s). Another
instance may rotate meanwhile; this one then signs with the now retired key for at most that
long, which is why a retired key is kept until ``retired_at + max TTL + signer_ttl_s + leeway``
(see :mod:`authsvc.signing.service`). A local rotation drops the entry at once.

The JWKS document is built from the same key set, re-read at most once a second per tenant
(a public endpoint must not turn each request into a query). Both caches are dropped for a
kid on a ``signing_key`` revocation event (key removed) and for the tenant on a local rotation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from authsvc.revocation.events import RevocationEvent
from authsvc.signing.crypto import Alg, SigningPrivateKey
from authsvc.tokens.jwt import ResolvedKey

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PublicKey:
    resolved: ResolvedKey
    state: str
    remove_after: datetime | None
    jwk: Mapping[str, Any]
    """The public JWK as published (public members only)."""

    def usable(self, now: datetime) -> bool:
        return self.remove_after is None or now < self.remove_after


@dataclass(frozen=True, slots=True)
class Signer:
    kid: str
    alg: Alg
    private_key: SigningPrivateKey


@dataclass(slots=True)
class _KeySet:
    keys: Mapping[str, PublicKey]
    loaded_at: float


class Keyring:
    def __init__(
        self,
        load_public: Callable[[str], Awaitable[Mapping[str, PublicKey]]],
        load_signer: Callable[[str], Awaitable[Signer]],
        *,
        refresh_interval_s: float = 1.0,
        signer_ttl_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load_public, self._load_signer = load_public, load_signer
        self.refresh_interval_s, self.signer_ttl_s, self._now = (
            refresh_interval_s,
            signer_ttl_s,
            monotonic,
        )
        self._public: dict[str, _KeySet] = {}
        self._signers: dict[str, tuple[Signer, float]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[object]] = {}
        self.public_loads = 0
        """How many times a tenant's public keys were read from the database (for tests)."""

    async def public_key(self, tenant_id: str, kid: str, now: datetime) -> ResolvedKey | None:
        """The verification key for ``kid`` of this tenant, or ``None`` if unknown/removed."""
        current = self._public.get(tenant_id)
        if current is not None:
            found = current.keys.get(kid)
            if found is not None:
                return found.resolved if found.usable(now) else None
            if self._now() - current.loaded_at < self.refresh_interval_s:
                return None  # refreshed less than a second ago: a made-up kid, not a new one
        fresh = await self._reload(tenant_id, current)
        found = fresh.keys.get(kid)
        return found.resolved if found is not None and found.usable(now) else None

    async def signer(self, tenant_id: str) -> Signer:
        entry = self._signers.get(tenant_id)
        if entry is not None and self._now() - entry[1] < self.signer_ttl_s:
            return entry[0]
        signer = await self._single_flight(("signer", tenant_id), self._load_signer, tenant_id)
        self._signers[tenant_id] = (signer, self._now())
        return signer

    async def key_set(self, tenant_id: str, *, max_age_s: float) -> Mapping[str, PublicKey]:
        """The tenant's whole key set (for the JWKS), read again if older than ``max_age_s``."""
        current = self._public.get(tenant_id)
        if current is not None and self._now() - current.loaded_at < max_age_s:
            return current.keys
        return (await self._reload(tenant_id, current)).keys

    def invalidate(self, tenant_id: str) -> None:
        self._public.pop(tenant_id, None)
        self._signers.pop(tenant_id, None)

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind != "signing_key":
            return
        current = self._public.get(event.tenant_id)
        if current is not None and event.value in current.keys:
            keys = {k: v for k, v in current.keys.items() if k != event.value}
            self._public[event.tenant_id] = _KeySet(keys, current.loaded_at)
        signer = self._signers.get(event.tenant_id)
        if signer is not None and signer[0].kid == event.value:
            del self._signers[event.tenant_id]

    async def _reload(self, tenant_id: str, current: _KeySet | None) -> _KeySet:
        try:
            keys = await self._single_flight(("public", tenant_id), self._load_public, tenant_id)
        except Exception:
            if current is None:
                raise
            current.loaded_at = self._now()  # database down: keep the set, retry in a second
            return current
        self.public_loads += 1
        fresh = _KeySet(keys, self._now())
        self._public[tenant_id] = fresh
        return fresh

    async def _single_flight(
        self, key: tuple[str, str], load: Callable[[str], Awaitable[T]], arg: str
    ) -> T:
        pending = self._inflight.get(key)
        if pending is not None:
            return cast(T, await asyncio.shield(pending))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load(arg)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]
