"""Issuing and revoking JWTs.

Minting (:meth:`TokenService.mint`) is the one path every issuer goes through (``POST
/v1/tokens``, OAuth ``client_credentials`` and token exchange): the tenant policy and the active
signer come from in-process caches, the claims from :func:`authsvc.tokens.claims.build_claims`
(the down-scoping rule), so a warm mint touches no database; JWTs are never stored.

Revocation (:meth:`TokenService.revoke`) of a ``jti``, of every token of a ``sub`` or of every
token minted from a key, issued up to now:

1. the event is committed to the ``revocations`` table (with its audit row) before the
   response; ``expires_at`` bounds how long it matters: a jti until the token's ``exp`` when
   it is known (the OAuth revocation endpoint has the token), otherwise, like sub and key
   cutoffs, until the tenant's revocation horizon (every token it can match has expired by
   then, even one minted under an earlier, higher maximum lifetime:
   :meth:`~authsvc.tenants.policy.TenantPolicy.revocation_horizon`); the poller's garbage
   collection and the denylist's pruning rely on it;
2. it is applied to this instance's :class:`~authsvc.revocation.denylist.Denylist` at once,
   so the very next verification here refuses the token;
3. it is published on the revocation bus for the other instances (which also poll the table,
   so a lost broadcast delays them by at most one poll interval).

"Issued up to now" uses the time in the jti (milliseconds, see :mod:`authsvc.revocation.
denylist`): a token minted after the revocation's commit is valid even within the same second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from authsvc.audit.service import record as audit
from authsvc.clock import MAX_CLOCK_SKEW_S, Clock
from authsvc.db.engine import SessionFactory
from authsvc.errors import InvalidRequest, NotFound, Unauthenticated
from authsvc.ids import new_id
from authsvc.keys.service import KeyService
from authsvc.principal import Principal
from authsvc.ratelimit.limits import parse_ratelimits
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import Kind, RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation
from authsvc.scopes import parse_grants
from authsvc.signing.service import SigningKeyService
from authsvc.tenants.policy import TenantCache, TenantPolicy
from authsvc.tokens.claims import TokenRequest, build_claims
from authsvc.tokens.jwt import sign_access_token

MAX_REVOKE_VALUE = 200
RevokeField = Literal["jti", "sub", "key_id"]
_KIND: dict[RevokeField, Kind] = {"jti": "jti", "sub": "sub", "key_id": "key_tokens"}


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    jti: str
    expires_at: datetime
    expires_in: int
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Revoked:
    field: RevokeField
    value: str
    cutoff: datetime
    expires_at: datetime


class TokenService:
    def __init__(
        self,
        *,
        db: SessionFactory,
        clock: Clock,
        tenants: TenantCache,
        signing: SigningKeyService,
        keys: KeyService,
        denylist: Denylist,
        bus: RevocationBus,
    ) -> None:
        self._db, self._clock, self._tenants = db, clock, tenants
        self._signing, self._keys, self._denylist, self._bus = signing, keys, denylist, bus

    async def tenant(self, tenant_id: str) -> TenantPolicy:
        tenant = await self._tenants.get(tenant_id)
        if tenant is None or not tenant.enabled:
            raise Unauthenticated("The tenant is disabled.")
        return tenant

    async def mint(self, parent: Principal, request: TokenRequest) -> MintedToken:
        """A token for ``request``, derived from ``parent`` (the one minting path)."""
        tenant = await self.tenant(parent.tenant)
        now = self._clock.time()
        jti = new_id("jti", now)  # carries the mint time in ms (revocation cutoffs use it)
        claims = build_claims(parent, request, tenant, now=now, jti=jti)
        signer = await self._signing.signer(tenant.id)
        token = sign_access_token(claims, signer.jws)  # header and key prepared once per key
        exp = int(claims["exp"])
        return MintedToken(
            token=token,
            jti=jti,
            expires_at=datetime.fromtimestamp(exp, UTC),
            expires_in=max(0, exp - int(now)),
            claims=claims,
        )

    async def create(
        self,
        principal: Principal,
        *,
        scopes: Sequence[Any],
        ttl_s: int | None = None,
        sub: str | None = None,
        aud: str | Sequence[str] | None = None,
        name: str | None = None,
        limits: dict[str, int] | None = None,
        ratelimits: Sequence[Any] = (),
    ) -> MintedToken:
        """``POST /v1/tokens``: a token minted from the caller's key (needs TOKENS:CREATE)."""
        principal.require("TOKENS:CREATE")
        request = TokenRequest(
            grants=parse_grants(list(scopes)),
            ttl_s=ttl_s,
            sub=sub,
            aud=(aud,) if isinstance(aud, str) else None if aud is None else tuple(aud),
            name=name,
            limits=limits,
            ratelimits=parse_ratelimits(ratelimits),
        )
        return await self.mint(principal, request)

    # --- revocation ----------------------------------------------------------------------

    async def revoke(
        self,
        principal: Principal,
        *,
        jti: str | None = None,
        sub: str | None = None,
        key_id: str | None = None,
    ) -> Revoked:
        """``POST /v1/tokens/revoke``: exactly one of ``jti``, ``sub``, ``key_id``. A non-ADMIN
        caller revokes by ``key_id`` only keys it manages (itself and its descendants)."""
        principal.require("TOKENS:REVOKE")
        fields: tuple[tuple[RevokeField, str | None], ...] = (
            ("jti", jti),
            ("sub", sub),
            ("key_id", key_id),
        )
        given = [(f, v) for f, v in fields if v is not None]
        if len(given) != 1:
            raise InvalidRequest("Give exactly one of jti, sub or key_id.")
        field, value = given[0]
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_REVOKE_VALUE:
            raise InvalidRequest(f"{field} must be 1 to {MAX_REVOKE_VALUE} characters.")
        if field == "key_id" and not await self._keys.visible(principal, value):
            raise NotFound("No such key.")
        return await self._revoke(principal.tenant, field, value, actor=principal.actor)

    async def revoke_jti(
        self, tenant_id: str, jti: str, *, exp: float | None, actor: str
    ) -> Revoked:
        """Revoke one token whose ``exp`` is known (OAuth revocation endpoint)."""
        return await self._revoke(tenant_id, "jti", jti, actor=actor, exp=exp)

    async def _revoke(
        self,
        tenant_id: str,
        field: RevokeField,
        value: str,
        *,
        actor: str,
        exp: float | None = None,
    ) -> Revoked:
        tenant = await self.tenant(tenant_id)
        now = self._clock.now()
        horizon = tenant.revocation_horizon(now)
        if exp is not None:
            horizon = min(horizon, datetime.fromtimestamp(exp + MAX_CLOCK_SKEW_S, UTC))
        event = RevocationEvent(tenant_id, _KIND[field], value, now, horizon)
        async with self._db.begin() as session:
            record_revocation(session, event, now=now)
            audit(
                session,
                now=now,
                actor=actor,
                action="token.revoke",
                target_type=field,
                target_id=value,
                tenant_id=tenant_id,
                details={"expires_at": horizon.isoformat()},
            )
        self._denylist.apply(event)  # this instance refuses it from the next request on
        await self._bus.publish([event])
        return Revoked(field, value, now, horizon)
