"""The claims of a new access token: the down-scoping rule applied to one request.

Pure: no I/O, no clock (``now`` and ``jti`` are arguments), so every issuing path (``POST
/v1/tokens``, OAuth ``client_credentials``, token exchange of a JWT, a key or an identity
provider's token) computes claims the same way from one :class:`~authsvc.principal.Principal`,
the parent, and a property test can check the rule on generated inputs.

The rule (DESIGN §1, §8), in the order it is checked:

1. a management scope in the request is a 400 ``INVALID_SCOPE`` (JWTs carry data scopes only);
2. :func:`authsvc.scopes.downscope` against the parent's grants as they are now: every scope
   covered, fixed params inherited and only narrowed, else 403 ``SCOPE_ESCALATION``;
3. TTL: at least 1 s; above the tenant maximum a 400 ``TTL_TOO_LONG``; then capped at the
   parent's expiry (a token never outlives what it was minted from);
4. audiences: each must be one of the tenant's; a token exchanged from a JWT keeps that JWT's
   audiences when none is asked for, and may only name some of them (never widen ``aud``);
5. limits: ``limits.rps`` and ``ratelimits`` of a parent JWT pass on; the child may only lower a
   rate or add limits (a ``ratelimits`` entry of the same name must be at most as permissive).
   Whatever the token carries, it is also charged against every limit of the key it derives
   from (:mod:`authsvc.keys.cache`), so its own limits can only narrow.

Claims follow RFC 9068 §2.2 plus Tinybird's payload: ``scopes`` as ``[{type, resource,
fixed_params}]``, optional ``limits``, ``ratelimits`` and ``name``. Token exchange adds ``act``
(RFC 8693 §4.1, the client that performed the exchange) and ``parent_jtis`` (the jtis of the
JWTs the token derives from, so revoking any of them revokes it too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authsvc.errors import Code, InvalidRequest, InvalidScope, ScopeEscalation, TtlTooLong
from authsvc.principal import Principal
from authsvc.ratelimit.limits import RateLimitDef, loosened
from authsvc.scopes import Grant, downscope
from authsvc.tenants.policy import TenantPolicy

MAX_SUB = 200
MAX_NAME = 200
MAX_AUDIENCES = 10
MAX_RPS = 1_000_000
MAX_CHAIN = 4
"""A token can be exchanged for a narrower one at most this many times in a row."""


@dataclass(frozen=True, slots=True)
class TokenRequest:
    grants: tuple[Grant, ...]
    ttl_s: int | None = None
    sub: str | None = None
    aud: tuple[str, ...] | None = None
    name: str | None = None
    limits: Mapping[str, int] | None = None
    ratelimits: tuple[RateLimitDef, ...] = ()
    actor: str | None = None
    """RFC 8693 ``act.sub``: the client performing a token exchange."""


def data_grants(grants: Sequence[Grant]) -> tuple[Grant, ...]:
    """The data grants of a credential (``ADMIN`` and other management scopes left out)."""
    return tuple(g for g in grants if not g.scope.management)


def build_claims(
    parent: Principal, request: TokenRequest, tenant: TenantPolicy, *, now: float, jti: str
) -> dict[str, Any]:
    """The payload of the token ``request`` asks for, or a domain error (see module doc)."""
    for want in request.grants:
        if want.scope.management:
            raise InvalidScope(
                f"Scope '{want.scope}' is a management scope; tokens carry data scopes only."
            )
    if not request.grants:
        raise InvalidScope("scopes must not be empty.")
    granted = downscope(parent.grants, request.grants)
    facts = parent.token
    claims: dict[str, Any] = {
        "iss": tenant.issuer,  # RFC 9068 §2.2 / RFC 7519 §4.1.1
        "sub": _sub(request.sub, parent.default_sub),  # RFC 7519 §4.1.2
        "aud": _audience(request.aud, tenant, None if facts is None else facts.audiences),
        "exp": _expiry(parent, request, tenant, now),  # RFC 7519 §4.1.4
        "iat": math.floor(now),  # RFC 7519 §4.1.6
        "jti": jti,  # RFC 7519 §4.1.7
        "client_id": parent.id,  # RFC 9068 §2.2 / RFC 8693 §4.3
        "scope": " ".join(str(g.scope) for g in granted),  # RFC 9068 §2.2.3, RFC 8693 §4.2
        "scopes": [g.to_claim() for g in granted],  # Tinybird
    }
    limits = _limits(request.limits, None if facts is None else facts.limits)
    if limits:
        claims["limits"] = limits
    ratelimits = _ratelimits(request.ratelimits, () if facts is None else facts.ratelimits)
    if ratelimits:
        claims["ratelimits"] = ratelimits
    name = request.name if request.name is not None else None if facts is None else facts.name
    if name is not None:
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME:
            raise InvalidRequest(
                f"name must be 1 to {MAX_NAME} characters.", code=Code.INVALID_NAME
            )
        claims["name"] = name
    if request.actor is not None:
        claims["act"] = {"sub": request.actor}  # RFC 8693 §4.1
    if facts is not None and parent.kind == "jwt":
        chain = (*facts.chain, facts.jti)
        if len(chain) > MAX_CHAIN:
            raise InvalidRequest(
                f"A token can be exchanged at most {MAX_CHAIN} times in a row.",
                code=Code.EXCHANGE_TOO_DEEP,
            )
        claims["parent_jtis"] = list(chain)
    return claims


def _expiry(parent: Principal, request: TokenRequest, tenant: TenantPolicy, now: float) -> int:
    ttl = tenant.default_token_ttl_s if request.ttl_s is None else request.ttl_s
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise InvalidRequest("ttl_s must be a positive number of seconds.", code=Code.INVALID_TTL)
    if ttl > tenant.max_token_ttl_s:
        raise TtlTooLong(
            f"ttl_s {ttl} exceeds this tenant's maximum of {tenant.max_token_ttl_s} seconds."
        )
    expires = now + ttl
    if parent.expires_at is not None:
        expires = min(expires, parent.expires_at.timestamp())  # never outlive the parent
    exp = math.floor(expires)
    if exp <= math.floor(now):
        raise InvalidRequest(
            "The credential expires too soon to mint a token from it.", code=Code.PARENT_EXPIRING
        )
    return exp


def _sub(sub: str | None, default: str) -> str:
    if sub is None:
        return default
    if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_SUB or not sub.isprintable():
        raise InvalidRequest(
            f"sub must be 1 to {MAX_SUB} printable characters.", code=Code.INVALID_SUB
        )
    return sub


def _audience(
    aud: tuple[str, ...] | None, tenant: TenantPolicy, inherited: tuple[str, ...] | None
) -> str | list[str]:
    """RFC 7519 §4.1.3; RFC 8693 §2.1 ``audience`` never widens a subject token's."""
    allowed = inherited if inherited else tenant.audiences
    if aud is None:
        chosen: tuple[str, ...] = inherited if inherited else tenant.audiences[:1]
    else:
        if not aud or len(aud) > MAX_AUDIENCES:
            raise InvalidRequest(
                f"aud must name 1 to {MAX_AUDIENCES} audiences.", code=Code.INVALID_AUDIENCE
            )
        for item in aud:
            if item not in allowed or item not in tenant.audiences:
                raise InvalidRequest(
                    "aud must be one of the audiences the credential may use.",
                    code=Code.INVALID_AUDIENCE,
                )
        chosen = tuple(dict.fromkeys(aud))
    return chosen[0] if len(chosen) == 1 else list(chosen)


def _limits(
    requested: Mapping[str, int] | None, inherited: Mapping[str, int] | None
) -> dict[str, int]:
    out: dict[str, int] = dict(inherited or {})
    if requested is None:
        return out
    unknown = set(requested) - {"rps"}
    if unknown:
        raise InvalidRequest("limits accepts only rps.", code=Code.INVALID_LIMITS)
    rps = requested.get("rps")
    if rps is None:
        return out
    if isinstance(rps, bool) or not isinstance(rps, int) or not 1 <= rps <= MAX_RPS:
        raise InvalidRequest(
            f"limits.rps must be an integer from 1 to {MAX_RPS}.", code=Code.INVALID_LIMITS
        )
    if "rps" in out and rps > out["rps"]:
        raise ScopeEscalation("limits.rps", "would raise the rate limit of the credential")
    out["rps"] = rps
    return out


def _ratelimits(
    requested: Sequence[RateLimitDef], kept: Sequence[RateLimitDef]
) -> list[dict[str, Any]]:
    new = {d.name: d for d in kept} | {d.name: d for d in requested}
    loose = loosened(kept, new.values())
    if loose is not None:
        raise ScopeEscalation("ratelimits", f"would loosen the limit '{loose}' of the credential")
    return [d.to_json() for d in new.values()]
