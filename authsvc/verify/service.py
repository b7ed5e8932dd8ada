"""Checking a credential: API key or JWT → :class:`~authsvc.verify.verdict.Verdict`.

Order of checks (the first failure is the verdict):

==  ===================  ==================================================================
1   MALFORMED            not a well-formed API key (prefix, length, checksum: no I/O) nor a
                         compact JWT; a JWT that fails parsing or the access-token profile
2   INVALID_SIGNATURE    JWT only: signature, algorithm or kid not valid
3   NOT_FOUND            no such key, or a credential of another tenant than the caller's
4   DISABLED             the credential's tenant is disabled, then the key itself
5   EXPIRED              past ``expires_at`` (for a rerolled key's old secret: its grace end)
6   REVOKED              key revoked; JWT ``jti`` / ``sub`` / minting key revoked
7   MALFORMED            JWT only, when the caller names an ``audience`` the token lacks
8   FORBIDDEN            a required scope is not granted
9   RATE_LIMITED         a limit of the key, its identity or the JWT refuses ``cost``
==  ===================  ==================================================================

Warm, nothing here touches the database: key records and identity limits come from the
:class:`~authsvc.keys.cache.KeyCache`, verified JWTs from the
:class:`~authsvc.verify.jwt_cache.VerifiedTokenCache`; the only network call is the rate-limit
decision (one Redis round trip) when a limit applies. Every limit of the request is decided
atomically and only after every other check passed, so a refused request consumes nothing.
A denial is data; this module raises only when a dependency it needs is down on a cold path
(the caller maps that to 503).

``fixed_params`` are those of the grant that matched the required scope. When several scopes
are required, they are merged; a name two grants both filter on gets the intersection of their
values (a request touching both resources must satisfy both filters).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from authsvc.clock import Clock
from authsvc.keys import secret as keysecret
from authsvc.keys.cache import KeyCache
from authsvc.keys.service import KeyRecord, key_status
from authsvc.keys.usage import UsageRecorder
from authsvc.metrics import Metrics
from authsvc.ratelimit.types import ALLOWED_NO_LIMITS, Decision, Limiter, LimitSpec
from authsvc.revocation.denylist import Denylist
from authsvc.scopes import ParamValue, Scope, find_grant
from authsvc.verify.jwt_cache import TokenVerifierLike, VerifiedTokenCache
from authsvc.verify.limits import key_specs, token_specs
from authsvc.verify.verdict import CODES, Code, Verdict, denied

MAX_TOKEN_CHARS = 16_384
_KEY_REASONS: dict[str, str] = {
    "DISABLED": "The key or its tenant is disabled.",
    "EXPIRED": "The key has expired.",
    "REVOKED": "The key has been revoked.",
}


class VerifyService:
    def __init__(
        self,
        keys: KeyCache,
        limiter: Limiter,
        clock: Clock,
        metrics: Metrics,
        *,
        usage: UsageRecorder | None = None,
        base_url: str = "",
    ) -> None:
        self.keys, self.limiter, self._clock, self._metrics = keys, limiter, clock, metrics
        self.usage, self.base_url = usage, base_url
        self.tokens: VerifiedTokenCache | None = None
        """JWT verification; ``None`` until :meth:`enable_jwt` (JWTs are then MALFORMED)."""

    def enable_jwt(self, verifier: TokenVerifierLike, denylist: Denylist) -> None:
        """Verify JWTs with ``verifier``, repeats served from a cache kept in step with
        ``denylist`` (see :mod:`authsvc.verify.jwt_cache`)."""
        self.tokens = VerifiedTokenCache(verifier, denylist, self._clock, self._metrics)
        denylist.listeners.append(self.tokens.on_event)

    async def verify(
        self,
        token: str,
        *,
        tenant_id: str,
        required: Sequence[Scope] = (),
        cost: int = 1,
        audience: str | None = None,
    ) -> Verdict:
        verdict = await self._verify(token, tenant_id, required, cost, audience)
        self._metrics.inc(self._metrics.verdicts, verdict.kind, verdict.code)
        return verdict

    async def key_limits(self, record: KeyRecord, cost: int = 1) -> Decision:
        """Decide ``cost`` against a key's (and its identity's) limits."""
        return await self._decide(record.tenant_id, await self._key_specs(record), cost)

    # --- pipeline -------------------------------------------------------------------------

    async def _verify(
        self,
        token: str,
        tenant_id: str,
        required: Sequence[Scope],
        cost: int,
        audience: str | None,
    ) -> Verdict:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return denied("MALFORMED", "The credential is empty or too long.")
        if keysecret.looks_like_key(token):
            return await self._verify_key(token, tenant_id, required, cost)
        if token.count(".") == 2:
            return await self._verify_jwt(token, tenant_id, required, cost, audience)
        return denied("MALFORMED", "The credential is neither an API key nor a JWT.")

    async def _verify_key(
        self, token: str, tenant_id: str, required: Sequence[Scope], cost: int
    ) -> Verdict:
        found, record = self.keys.hit(token)  # warm: no format check, no I/O
        if not found:
            kind = keysecret.kind_of(token)
            if kind is None:
                return denied("MALFORMED", "The API key is not well formed.", "api_key")
            if kind != "api":
                return denied("NOT_FOUND", "No such API key.", "api_key")
            record = await self.keys.record(token)
        if record is None or record.tenant_id != tenant_id:
            return denied("NOT_FOUND", "No such API key.", "api_key")
        base = Verdict(
            code="VALID",
            kind="api_key",
            tenant_slug=record.tenant_slug,
            tenant_id=record.tenant_id,
            key_id=record.id,
            sub=record.identity,
            grants=record.grants,
            expires_at=record.expires_at,
        )
        status = key_status(record, self._clock.now())
        if status != "VALID":
            return _with(base, _code(status), reason=_KEY_REASONS.get(status))

        async def specs() -> list[LimitSpec]:
            return await self._key_specs(record)

        verdict = await self._authorize(base, required, cost, specs)
        if verdict.valid and self.usage is not None:
            self.usage.touch(record.id)
        return verdict

    async def _verify_jwt(
        self,
        token: str,
        tenant_id: str,
        required: Sequence[Scope],
        cost: int,
        audience: str | None,
    ) -> Verdict:
        if self.tokens is None:
            return denied("MALFORMED", "JWT verification is not available.", "jwt")
        check = await self.tokens.verify(token, tenant_id=tenant_id)
        code = _code(check.code)
        if code == "INVALID_SIGNATURE" and _foreign_issuer(token, check.tenant_slug, self.base_url):
            # Signed by another issuer (another tenant, or anyone else): to this tenant it is
            # simply not one of its credentials. Read from the token itself, so it reveals
            # nothing the caller could not see.
            return denied("NOT_FOUND", "The token was not issued by this tenant.", "jwt")
        if code in ("MALFORMED", "INVALID_SIGNATURE", "NOT_FOUND"):
            return denied(code, check.reason or "The token is not valid.", "jwt")
        if check.tenant_id != tenant_id:  # never valid across tenants, whatever else holds
            return denied("NOT_FOUND", "No such token.", "jwt")
        base = Verdict(
            code="VALID",
            kind="jwt",
            tenant_slug=check.tenant_slug,
            tenant_id=check.tenant_id,
            key_id=check.client_id,
            sub=check.sub,
            grants=tuple(check.grants),
            expires_at=check.expires_at,
        )
        if code != "VALID":
            return _with(base, code, reason=check.reason)
        if audience is not None and audience not in _audiences(check.claims or {}):
            return _with(
                base, "MALFORMED", reason="The token's audience does not include the one asked."
            )

        async def specs() -> list[LimitSpec]:
            return token_specs(check.claims or {}, sub=check.sub, jti=check.jti)

        return await self._authorize(base, required, cost, specs)

    async def _authorize(
        self,
        base: Verdict,
        required: Sequence[Scope],
        cost: int,
        specs: Callable[[], Awaitable[list[LimitSpec]]],
    ) -> Verdict:
        params: dict[str, ParamValue] = {}
        for scope in required:
            grant = find_grant(base.grants, scope)
            if grant is None or (base.kind == "jwt" and scope.management):
                return _with(base, "FORBIDDEN", reason=f"The credential lacks scope {scope}.")
            params = _merge(params, grant.fixed_params) if params else dict(grant.fixed_params)
        limit_specs: list[LimitSpec] = await specs()
        decision = await self._decide(base.tenant_id or "", limit_specs, cost)
        if not decision.allowed:
            return _with(
                base,
                "RATE_LIMITED",
                fixed_params=params,
                decision=decision,
                reason="A rate limit refused the request.",
            )
        return _with(base, "VALID", fixed_params=params, decision=decision)

    async def _key_specs(self, record: KeyRecord) -> list[LimitSpec]:
        identity_limits = (
            await self.keys.identity_limits(record.tenant_id, record.identity)
            if record.identity is not None
            else ()
        )
        return key_specs(record, identity_limits)

    async def _decide(self, scope: str, specs: Sequence[LimitSpec], cost: int) -> Decision:
        if not specs:
            return ALLOWED_NO_LIMITS
        decision = await self.limiter.check(scope, specs, cost)
        self._metrics.rate_limit(decision.allowed, decision.degraded)
        return decision


def _code(value: str) -> Code:
    for code in CODES:
        if code == value:
            return code
    return "MALFORMED"


def _with(base: Verdict, code: Code, **changes: Any) -> Verdict:
    """``base`` with another code: identity fields kept, outcome fields from ``changes``."""
    return Verdict(
        code=code,
        kind=base.kind,
        tenant_slug=base.tenant_slug,
        tenant_id=base.tenant_id,
        key_id=base.key_id,
        sub=base.sub,
        grants=base.grants,
        fixed_params=changes.get("fixed_params", {}),
        expires_at=base.expires_at,
        decision=changes.get("decision"),
        reason=changes.get("reason"),
    )


def _foreign_issuer(token: str, tenant_slug: str | None, base_url: str) -> bool:
    """Whether the (unverified) ``iss`` of a compact JWT names another issuer than the tenant."""
    if tenant_slug is None:
        return False
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, IndexError, UnicodeDecodeError):
        return False
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return isinstance(iss, str) and iss != f"{base_url}/t/{tenant_slug}"


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _merge(
    current: dict[str, ParamValue], extra: Mapping[str, ParamValue]
) -> dict[str, ParamValue]:
    merged = dict(current)
    for name, value in extra.items():
        if name not in merged:
            merged[name] = value
            continue
        mine = merged[name]
        if not isinstance(mine, list) and not isinstance(value, list):
            merged[name] = mine if _same(mine, value) else []
            continue
        mine_l = mine if isinstance(mine, list) else [mine]
        theirs = value if isinstance(value, list) else [value]
        merged[name] = [v for v in mine_l if any(_same(v, t) for t in theirs)]
    return merged


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b
