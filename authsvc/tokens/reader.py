"""Reading a JWT of a tenant: signature and claims, nothing else, cached until it expires.

:meth:`TokenReader.read` runs :func:`authsvc.tokens.jwt.verify_access_token` with the tenant's
public key for the token's ``kid`` (from the :class:`~authsvc.signing.keyring.Keyring`), its
issuer and audiences, then parses the Tinybird ``scopes`` claim and the other claims authsvc
writes. The result, a :class:`ReadToken`, says only "this tenant signed these claims": whether
the token may be used *now* (tenant enabled, not revoked, the key it was minted from still
valid and still holding those grants) is decided by the check pipeline
(:mod:`authsvc.verify.service`) on every use, from state that is itself kept current.

So only what cannot change is cached: a good read is kept under ``(tenant, SHA-256(token))``,
never the token itself, until the token's ``exp``, and a repeat read costs one hash and one
dict lookup. Invalidation: a ``tenant`` event (its issuer or audiences may have changed) or a
``signing_key`` event (a key removed) drops the tenant's entries, and a read that started
before it is not stored (:class:`~authsvc.cache.Cache`). Rejections are never cached.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authsvc.cache import MISSING, Cache, Counter
from authsvc.clock import Clock
from authsvc.errors import AuthsvcError, InvalidRequest
from authsvc.ratelimit.limits import RateLimitDef, parse_ratelimits
from authsvc.revocation.events import RevocationEvent
from authsvc.scopes import Grant, parse_fixed_params, parse_scope
from authsvc.signing.crypto import ResolvedKey
from authsvc.signing.keyring import Keyring
from authsvc.tenants.policy import TenantPolicy
from authsvc.tokens.jwt import Rejected, unverified_kid, verify_access_token

LEEWAY_S = 10.0
MAX_GRANTS_IN_TOKEN = 100
MAX_CACHED_S = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class ReadToken:
    """A JWT whose signature and claims checked out for its tenant."""

    tenant_id: str
    sub: str
    client_id: str
    jti: str
    iat: float
    exp: float
    grants: tuple[Grant, ...]
    chain: tuple[str, ...]
    """``parent_jtis``: the JWTs this one was exchanged from."""
    audiences: tuple[str, ...]
    rps: int | None
    """``limits.rps``: requests per second for the token's subject."""
    ratelimits: tuple[RateLimitDef, ...]
    name: str | None
    claims: Mapping[str, Any]


def parse_token_grants(claim: object) -> tuple[Grant, ...] | None:
    """Grants from the ``scopes`` claim (``[{type, resource?, fixed_params?}]``), or ``None``
    if it is not a list of data grants."""
    if not isinstance(claim, list) or len(claim) > MAX_GRANTS_IN_TOKEN:
        return None
    grants: list[Grant] = []
    try:
        for item in claim:
            if not isinstance(item, dict) or set(item) - {"type", "resource", "fixed_params"}:
                return None
            kind, resource = item.get("type"), item.get("resource")
            if not isinstance(kind, str) or not (resource is None or isinstance(resource, str)):
                return None
            scope = parse_scope(kind if resource is None else f"{kind}:{resource}")
            if scope.management:
                return None
            grants.append(Grant(scope, parse_fixed_params(item.get("fixed_params") or {})))
    except AuthsvcError:
        return None
    return tuple(grants)


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


_R_SCOPES = Rejected("MALFORMED", "claim scopes is invalid")
_R_CHAIN = Rejected("MALFORMED", "claim parent_jtis is invalid")
_R_LIMITS = Rejected("MALFORMED", "claim limits or ratelimits is invalid")
MAX_RPS = 1_000_000


def _limits(claims: Mapping[str, Any]) -> tuple[int | None, tuple[RateLimitDef, ...]] | None:
    """``limits.rps`` and ``ratelimits`` of a token, or ``None`` if either is malformed (a
    limit is never silently dropped)."""
    rps: int | None = None
    if "limits" in claims:
        limits = claims["limits"]
        if not isinstance(limits, dict) or set(limits) - {"rps"}:
            return None
        value = limits.get("rps")
        if value is not None:
            if type(value) is not int or not 1 <= value <= MAX_RPS:
                return None
            rps = value
    try:
        ratelimits = parse_ratelimits(claims.get("ratelimits") or [])
    except InvalidRequest:
        return None
    return rps, ratelimits


class TokenReader:
    def __init__(
        self,
        keyring: Keyring,
        clock: Clock,
        *,
        count: Counter,
        leeway_s: float = LEEWAY_S,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keyring, self._clock, self.leeway_s = keyring, clock, leeway_s
        self._reads: Cache[tuple[str, bytes], ReadToken] = Cache(
            "jwt", ttl_s=MAX_CACHED_S, max_entries=max_entries, count=count, monotonic=monotonic
        )

    def __len__(self) -> int:
        return len(self._reads)

    async def read(self, token: str, tenant: TenantPolicy) -> ReadToken | Rejected:
        k = (tenant.id, hashlib.sha256(token.encode()).digest())
        hit = self._reads.peek(k)
        if hit is not MISSING and self._clock.time() < hit.exp + self.leeway_s:  # type: ignore[union-attr]
            return hit  # type: ignore[return-value]
        generation = self._reads.generation
        result = await self._read(token, tenant)
        if isinstance(result, ReadToken):
            self._reads.put(k, result, since=generation, tag=tenant.id)
        return result

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind in ("tenant", "signing_key"):
            self._reads.invalidate_tag(event.tenant_id)

    async def _read(self, token: str, tenant: TenantPolicy) -> ReadToken | Rejected:
        key: ResolvedKey | None = None
        kid = unverified_kid(token)
        if kid is not None:
            key = await self._keyring.public_key(tenant.id, kid)
        result = verify_access_token(
            token,
            resolve_key=lambda k: key if key is not None and k == key.kid else None,
            issuer=tenant.issuer,
            audiences=tenant.audiences,
            now=self._clock.time(),
            leeway_s=self.leeway_s,
        )
        if isinstance(result, Rejected):
            return result
        claims = result.claims
        grants = parse_token_grants(claims.get("scopes"))
        if grants is None:
            return _R_SCOPES
        chain = claims.get("parent_jtis", [])
        if not isinstance(chain, list) or not all(isinstance(j, str) for j in chain):
            return _R_CHAIN
        limits = _limits(claims)
        if limits is None:
            return _R_LIMITS
        name = claims.get("name")
        return ReadToken(
            tenant_id=tenant.id,
            sub=str(claims["sub"]),
            client_id=str(claims["client_id"]),
            jti=str(claims["jti"]),
            iat=float(claims["iat"]),
            exp=float(claims["exp"]),
            grants=grants,
            chain=tuple(chain),
            audiences=_strings(claims.get("aud")) or (),
            rps=limits[0],
            ratelimits=limits[1],
            name=name if isinstance(name, str) else None,
            claims=claims,
        )
