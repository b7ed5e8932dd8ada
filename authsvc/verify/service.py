"""The one check pipeline: a presented credential, a tenant, the scopes asked for and a cost →
a :class:`~authsvc.verify.verdict.Verdict`. Every endpoint goes through it: ``/v1/verify`` and
``/v1/authz`` for the credential under test, and :meth:`VerifyService.authenticate` for the
caller of every other endpoint (management, OAuth clients, gateways), so authority, limit
charging and ``last_used_at`` live here and only here.

The warm path of ``POST /v1/verify`` with an API key, top to bottom (6 files, no climb back):

1. ``verify/controller.py`` :func:`verify`: the caller's key is authenticated through step 2-5
   below (cost 1 against its own limits), the body decoded strictly in one pass;
2. ``verify/service.py`` :meth:`VerifyService.check`: an ``ask_`` credential is hashed once
   (HMAC-SHA256 under the server secret); a cached secret skips the format check;
3. ``keys/cache.py`` + ``cache.py``: secret → key id → the key's :class:`Lineage` (a dict lookup
   per level; ancestors bound its grants, expiry and limits);
4. ``verify/service.py`` :meth:`VerifyService._decide`: status, each required scope found and
   their filters met, then every limit of the lineage decided in one atomic call;
5. ``ratelimit/redis.py`` (or ``memory.py``): one Lua script, one round trip, only when a limit
   applies;
6. ``verify/verdict.py``: the verdict, encoded once by the controller.

A cached JWT is only hashed (SHA-256) at step 2, then read from the
:class:`~authsvc.tokens.reader.TokenReader` cache; its state is checked like a key's: tenant,
denylist (jti, subject, minting key, the JWTs it was exchanged from), then the lineage of the
key it was minted from, whose grants bound the token's and whose limits it is charged against.

Order of checks (the first failure is the verdict):

==  ===================  ==================================================================
1   MALFORMED            not an API key nor a compact JWT; an API key with a bad checksum
2   NOT_FOUND            unknown credential, another tenant's, or the minting key is gone
3   MALFORMED /          (JWT) :func:`authsvc.tokens.jwt.verify_access_token`: profile,
    INVALID_SIGNATURE /  signature (algorithm pinned per kid), issuer, audience, times
    EXPIRED
4   DISABLED             the tenant, the key or an ancestor is disabled
5   EXPIRED              the key, an ancestor, or a rerolled key's previous secret expired
6   REVOKED              the key or an ancestor is revoked; the JWT is on the denylist
7   MALFORMED            the caller names an ``audience`` the token lacks
8   FORBIDDEN            a required scope is not granted now, or the filters of the required
                         scopes have no common value (filters never fail open)
9   RATE_LIMITED         a limit of the credential, its identity, or what it derives from
==  ===================  ==================================================================

Warm, nothing here touches the database; the only network call is the rate-limit decision.
Every limit of the request is decided atomically and only after every other check passed, so
a refused request consumes nothing. A denial is data; this module raises only from
:meth:`VerifyService.authenticate` (an unusable caller) and when a dependency it needs is down
on a cold path (the web layer maps that to 503). Off the warm path: ``verify/federated.py``
(tokens exchanged from an identity provider) and ``verify/refusals.py`` (what a denial says).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from authsvc.cache import MISSING
from authsvc.clock import Clock
from authsvc.errors import Code, Unauthenticated
from authsvc.issuers.cache import IssuerCache
from authsvc.keys import secret as keysecret
from authsvc.keys.cache import KeyCache, Lineage
from authsvc.keys.usage import UsageRecorder
from authsvc.metrics import Metrics
from authsvc.principal import Principal, TokenFacts
from authsvc.ratelimit.limits import specs
from authsvc.ratelimit.types import ALLOWED_NO_LIMITS, Decision, Limiter, LimitSpec
from authsvc.revocation.denylist import Denylist
from authsvc.scopes import ADMIN, Grant, ParamValue, Scope, find_grant, intersect, meet
from authsvc.tenants.policy import TenantCache
from authsvc.tokens.jwt import Rejected
from authsvc.tokens.reader import ReadToken, TokenReader
from authsvc.verify.federated import ISSUER_PREFIX, federated
from authsvc.verify.refusals import (
    KEY_REASONS,
    TOKEN_ORIGIN_REASONS,
    caller_refusal,
    issued_elsewhere,
    wrong_audience,
)
from authsvc.verify.verdict import CredentialKind, Verdict

MAX_TOKEN_CHARS = 16_384
_MEMO_MAX = 100_000


def _datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


class VerifyService:
    def __init__(
        self,
        *,
        keys: KeyCache,
        tenants: TenantCache,
        issuers: IssuerCache,
        reader: TokenReader,
        denylist: Denylist,
        limiter: Limiter,
        usage: UsageRecorder,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._keys, self._tenants, self._issuers, self._reader = keys, tenants, issuers, reader
        self._denylist, self._limiter, self._usage = denylist, limiter, usage
        self._clock, self._metrics = clock, metrics
        self._memo: dict[str, tuple[Lineage, tuple[Grant, ...]]] = {}

    # --- entry points ---------------------------------------------------------------------

    async def check(
        self,
        token: str,
        *,
        tenant_id: str,
        required: Sequence[Scope] = (),
        cost: int = 1,
        audience: str | None = None,
    ) -> Verdict:
        """The verdict on ``token`` for the caller's tenant (see the module docstring)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            verdict = Verdict(Code.MALFORMED, reason="The credential is empty or too long.")
        elif keysecret.looks_like_key(token):
            verdict = await self._check_key(token, tenant_id, required, cost)
        elif token.count(".") == 2:
            verdict = await self._check_jwt(token, tenant_id, required, cost, audience)
        else:
            verdict = Verdict(
                Code.MALFORMED, reason="The credential is neither an API key nor a JWT."
            )
        self._metrics.inc(self._metrics.verdicts, verdict.kind, verdict.code)
        return verdict

    async def authenticate(
        self, secret: str | None, *, tenant_id: str | None = None
    ) -> tuple[Principal, Decision]:
        """The caller behind an API key, charged one unit of its limits; ``tenant_id`` (when
        given) is the only tenant it may belong to. Raises :class:`Unauthenticated` or
        :class:`RateLimited` (with the headers of the refusal)."""
        if not secret:
            raise Unauthenticated("Missing bearer credential.")
        if not keysecret.looks_like_key(secret):
            raise Unauthenticated("The credential is not an API key.")
        verdict = await self._check_key(secret, tenant_id, (), 1)
        if verdict.code is Code.VALID and verdict.principal is not None:
            return verdict.principal, verdict.decision or ALLOWED_NO_LIMITS
        raise caller_refusal(verdict)

    # --- API keys -------------------------------------------------------------------------

    async def _check_key(
        self, token: str, tenant_id: str | None, required: Sequence[Scope], cost: int
    ) -> Verdict:
        digest = self._keys.digest(token)
        if self._keys.secrets.peek(digest) is MISSING:  # a cached secret was well formed
            kind = keysecret.kind_of(token)
            if kind is None:
                return Verdict(Code.MALFORMED, "api_key", reason="The API key is not well formed.")
            if kind != "api":
                return Verdict(Code.NOT_FOUND, "api_key", reason="No such API key.")
        match = await self._keys.by_secret(token, digest)
        if match is None or (tenant_id is not None and match.lineage.key.tenant_id != tenant_id):
            return Verdict(Code.NOT_FOUND, "api_key", reason="No such API key.")
        lineage = match.lineage
        tenant = await self._tenants.get(lineage.key.tenant_id)
        if tenant is None:
            return Verdict(Code.NOT_FOUND, "api_key", reason="No such API key.")
        principal = Principal(
            kind="key",
            id=lineage.key.id,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            grants=lineage.grants,
            expires_at=_datetime(_earliest(lineage.expires_at, match.grace_until)),
            sub=lineage.key.identity,
        )
        status = (
            Code.DISABLED
            if not tenant.enabled
            else lineage.status(self._clock.time(), expires_at=match.grace_until)
        )
        if status is not Code.VALID:
            return Verdict(status, "api_key", principal, reason=KEY_REASONS[status])
        limits = await self._keys.identity_limits(lineage)
        verdict = await self._decide(
            principal, "api_key", required, cost, lineage.specs(limits, derived=False)
        )
        if verdict.valid:
            self._usage.touch(lineage.key.id)
        return verdict

    # --- JWTs -----------------------------------------------------------------------------

    async def _check_jwt(
        self,
        token: str,
        tenant_id: str,
        required: Sequence[Scope],
        cost: int,
        audience: str | None,
    ) -> Verdict:
        tenant = await self._tenants.get(tenant_id)
        if tenant is None:
            return Verdict(Code.NOT_FOUND, "jwt", reason="Unknown tenant.")
        read = await self._reader.read(token, tenant)
        if isinstance(read, Rejected):
            code = Code(read.code)
            if code is Code.INVALID_SIGNATURE and issued_elsewhere(token, tenant):
                # Signed by another issuer (another tenant, or anyone else): to this tenant it
                # is simply not one of its credentials. Read from the token itself, so it
                # reveals nothing the caller could not see.
                return Verdict(Code.NOT_FOUND, "jwt", reason="The token was not issued here.")
            return Verdict(code, "jwt", reason=read.reason)
        facts = TokenFacts(
            jti=read.jti,
            chain=read.chain,
            limits=None if read.rps is None else {"rps": read.rps},
            ratelimits=read.ratelimits,
            audiences=read.audiences,
            name=read.name,
            claims=read.claims,
        )
        base = Principal(
            kind="jwt",
            id=read.client_id,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            grants=read.grants,
            expires_at=_datetime(read.exp),
            sub=read.sub,
            token=facts,
        )
        if not tenant.enabled:
            return Verdict(Code.DISABLED, "jwt", base, reason="The tenant is disabled.")
        if self._revoked(tenant.id, read):
            return Verdict(Code.REVOKED, "jwt", base, reason="The token has been revoked.")
        if read.client_id.startswith(ISSUER_PREFIX):
            judged = await federated(self._issuers, read, base, audience)
            if isinstance(judged, Verdict):
                return judged
            principal, issuer_specs = judged
            return await self._decide(
                principal, "jwt", required, cost, _token_specs(read) + issuer_specs
            )
        lineage = await self._keys.lineage(read.client_id, tenant.id)
        if lineage is None:
            return Verdict(
                Code.NOT_FOUND, "jwt", reason="The key that minted the token does not exist."
            )
        status = lineage.status(self._clock.time())
        if status is not Code.VALID:
            return Verdict(status, "jwt", base, reason=TOKEN_ORIGIN_REASONS[status])
        principal = Principal(
            kind="jwt",
            id=read.client_id,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            grants=self._bounded(read, lineage),
            expires_at=_datetime(_earliest(read.exp, lineage.expires_at)),
            sub=read.sub,
            token=facts,
        )
        if audience is not None and audience not in read.audiences:
            return wrong_audience(principal)
        limits = await self._keys.identity_limits(lineage)
        charged = _token_specs(read) + lineage.specs(limits, derived=True)
        return await self._decide(principal, "jwt", required, cost, charged)

    def _revoked(self, tenant_id: str, read: ReadToken) -> bool:
        deny = self._denylist
        if deny.token_revoked(
            tenant_id, jti=read.jti, sub=read.sub, client_id=read.client_id, iat=read.iat
        ):
            return True
        return any(
            deny.token_revoked(tenant_id, jti=parent, sub=None, client_id=None, iat=read.iat)
            for parent in read.chain
        )

    def _bounded(self, read: ReadToken, lineage: Lineage) -> tuple[Grant, ...]:
        """The token's grants bounded by the key it was minted from, as that key is now
        (memoised per token while the lineage is the same object)."""
        if any(g.scope.type == ADMIN for g in lineage.grants):
            return read.grants
        memo = self._memo.get(read.jti)
        if memo is not None and memo[0] is lineage:
            return memo[1]
        grants = intersect(read.grants, lineage.grants)
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[read.jti] = (lineage, grants)
        return grants

    # --- the decision ---------------------------------------------------------------------

    async def _decide(
        self,
        principal: Principal,
        kind: CredentialKind,
        required: Sequence[Scope],
        cost: int,
        charged: Sequence[LimitSpec],
    ) -> Verdict:
        params: dict[str, ParamValue] = {}
        for scope in required:
            grant = find_grant(principal.grants, scope)
            if grant is None or (kind == "jwt" and scope.management):
                return Verdict(
                    Code.FORBIDDEN, kind, principal, reason=f"The credential lacks scope {scope}."
                )
            met = meet(params, grant.fixed_params)
            if met is None:
                return Verdict(
                    Code.FORBIDDEN,
                    kind,
                    principal,
                    reason="The filters of the required scopes have no common value.",
                )
            params = met
        decision = ALLOWED_NO_LIMITS
        if charged:
            decision = await self._limiter.check(principal.tenant, charged, cost)
            self._metrics.rate_limit(decision.allowed, decision.degraded)
        if not decision.allowed:
            return Verdict(
                Code.RATE_LIMITED,
                kind,
                principal,
                params,
                decision,
                "A rate limit refused the request.",
            )
        return Verdict(Code.VALID, kind, principal, params, decision)


def _token_specs(read: ReadToken) -> list[LimitSpec]:
    """A JWT's own limits (``limits.rps``, ``ratelimits``), on counters of its verified
    ``sub`` (shared by every token of that subject), never of a free-form name."""
    holder = f"sub:{read.sub}"
    out = specs(holder, read.ratelimits)
    if read.rps is not None:
        out.append(LimitSpec(f"{holder}:rps", "rps", read.rps, 1.0, read.rps))
    return out
