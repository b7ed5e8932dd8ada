"""In-process signing keys of every tenant: public keys for verification and the JWKS, the
active signer for minting. Reads the ``signing_keys`` table; never writes it.

Public keys
-----------
Per tenant, a map ``kid → PublicKey`` (the parsed key with the one algorithm pinned to it, its
state and ``remove_after``). A verification with a known kid is a dict lookup: no database, no
key parsing. An unknown kid triggers a reload of the tenant's set, at most once per
``refresh_interval_s`` per tenant, through a single flight: a token that names a fresh kid (a
rotation done by another instance) is accepted within a second, while a flood of tokens with
made-up kids costs one query per tenant per second, not one per token. A retired key is
refused from its ``remove_after`` on, even before the rotation task deletes it. If a reload
fails (database down) the previous set keeps serving.

Signer
------
The active private key of a tenant, decrypted once and kept for ``signer_ttl_s`` (60 s),
with its :class:`~authsvc.signing.jws.JwsSigner` (the encoded header and the signature
function, prepared once per key, so a mint only encodes the claims and signs).
Another instance may rotate meanwhile; this one then signs with the now retired key for at
most that long, which is why a retired key stays published until every token it may still
sign has expired (see :mod:`authsvc.signing.service`). A local rotation drops the entry at once.

The JWKS document is built from the same key set, re-read at most once a second per tenant.
Both caches are :class:`~authsvc.cache.Cache` maps: a ``signing_key`` revocation event (key
removed) drops the tenant's entries, and a reload that started before it is never stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import jwt as pyjwt
from sqlalchemy import select

from authsvc.cache import MISSING, Cache, Counter
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import SigningKey
from authsvc.revocation.events import RevocationEvent
from authsvc.signing import crypto
from authsvc.signing.crypto import Alg, ResolvedKey, SigningPrivateKey
from authsvc.signing.jws import JwsSigner

NEXT, ACTIVE, RETIRED = "next", "active", "retired"
PUBLISHED = (NEXT, ACTIVE, RETIRED)
_PUBLIC_MEMBERS = {
    "EC": ("kty", "crv", "x", "y", "kid", "alg", "use"),
    "RSA": ("kty", "n", "e", "kid", "alg", "use"),
    "OKP": ("kty", "crv", "x", "kid", "alg", "use"),
}
_JWKS_ORDER = {ACTIVE: 0, NEXT: 1, RETIRED: 2}


def aad(tenant_id: str, kid: str) -> bytes:
    """The additional data binding an encrypted private key to its tenant and kid."""
    return f"authsvc signing key|{tenant_id}|{kid}".encode()


def public_members(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Only the public members of an asymmetric JWK (defence in depth for the JWKS)."""
    allowed = _PUBLIC_MEMBERS.get(str(jwk.get("kty")))
    if allowed is None:
        raise ValueError("not an asymmetric public key")
    return {name: jwk[name] for name in allowed if name in jwk}


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
    jws: JwsSigner = field(init=False, repr=False, compare=False)
    """Signs with this key: pass it to :func:`authsvc.tokens.jwt.sign_access_token`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "jws", JwsSigner(self.private_key, kid=self.kid, alg=self.alg))


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: Mapping[str, PublicKey]
    loaded_at: float


class Keyring:
    def __init__(
        self,
        db: SessionFactory,
        master_secrets: Mapping[str, bytes],
        clock: Clock,
        *,
        count: Counter,
        refresh_interval_s: float = 1.0,
        signer_ttl_s: float = 60.0,
        max_tenants: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db, self._masters, self._clock, self._now = db, master_secrets, clock, monotonic
        self.refresh_interval_s = refresh_interval_s
        self._sets: Cache[str, KeySet] = Cache(
            "signing_keys", ttl_s=300.0, max_entries=max_tenants, count=count, monotonic=monotonic
        )
        self._signers: Cache[str, Signer | None] = Cache(
            "signer",
            ttl_s=signer_ttl_s,
            negative_ttl_s=1.0,
            max_entries=max_tenants,
            count=count,
            monotonic=monotonic,
        )
        self.public_loads = 0
        """How many times a tenant's public keys were read from the database (for tests)."""

    async def public_key(self, tenant_id: str, kid: str) -> ResolvedKey | None:
        """The verification key for ``kid`` of this tenant, or ``None`` if unknown/removed."""
        now = self._clock.now()
        current = self._sets.peek(tenant_id)
        if isinstance(current, KeySet):
            found = current.keys.get(kid)
            if found is not None:
                return found.resolved if found.usable(now) else None
            if self._now() - current.loaded_at < self.refresh_interval_s:
                return None  # read less than a second ago: a made-up kid, not a new one
            self._sets.invalidate(tenant_id)
        found = (await self._key_set(tenant_id)).keys.get(kid)
        return found.resolved if found is not None and found.usable(now) else None

    async def signer(self, tenant_id: str) -> Signer | None:
        """The tenant's active signing key, or ``None`` when it has none."""
        return await self._signers.get(tenant_id, lambda: self._load_signer(tenant_id))

    async def jwks(self, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set (RFC 7517 §5) of the tenant: next, active and retired keys."""
        current = self._sets.peek(tenant_id)
        if isinstance(current, KeySet) and self._now() - current.loaded_at >= 1.0:
            self._sets.invalidate(tenant_id)  # a public endpoint: re-read at most once a second
        keys = (await self._key_set(tenant_id)).keys
        now = self._clock.now()
        rows = sorted(
            (k for k in keys.values() if k.usable(now)), key=lambda k: _JWKS_ORDER[k.state]
        )
        # RFC 7517 §5: "keys" is REQUIRED
        return {"keys": [dict(k.jwk) for k in rows]}

    def invalidate(self, tenant_id: str) -> None:
        self._sets.invalidate(tenant_id)
        self._signers.invalidate(tenant_id)

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind == "signing_key":
            self.invalidate(event.tenant_id)

    # --- loads ----------------------------------------------------------------------------

    async def _key_set(self, tenant_id: str) -> KeySet:
        stale = self._sets.last(tenant_id)
        try:
            return await self._sets.get(tenant_id, lambda: self._load_public(tenant_id))
        except Exception:
            if stale is MISSING:
                raise
            return cast(KeySet, stale)  # database down: keep the set

    async def _load_public(self, tenant_id: str) -> KeySet:
        async with self._db() as session:
            rows = (
                await session.scalars(
                    select(SigningKey).where(
                        SigningKey.tenant_id == tenant_id, SigningKey.state.in_(PUBLISHED)
                    )
                )
            ).all()
        self.public_loads += 1
        out: dict[str, PublicKey] = {}
        for row in rows:
            jwk = public_members(row.public_jwk)
            parsed = pyjwt.PyJWK(jwk, algorithm=row.alg).key
            resolved = ResolvedKey(kid=row.kid, alg=cast(Alg, row.alg), public_key=parsed)
            out[row.kid] = PublicKey(resolved, row.state, row.remove_after, jwk)
        return KeySet(out, self._now())

    async def _load_signer(self, tenant_id: str) -> Signer | None:
        async with self._db() as session:
            row = await session.scalar(
                select(SigningKey).where(
                    SigningKey.tenant_id == tenant_id, SigningKey.state == ACTIVE
                )
            )
        if row is None:
            return None
        pem = crypto.decrypt_private_key(
            row.private_key_enc, master_secrets=self._masters, aad=aad(tenant_id, row.kid)
        )
        return Signer(row.kid, cast(Alg, row.alg), crypto.load_private_key(pem))
