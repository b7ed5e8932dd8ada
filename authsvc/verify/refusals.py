"""What a denial says: the reasons of refused keys and tokens, the refusal of a caller that
cannot be authenticated, and the tell of a token issued elsewhere. Only read once a check has
failed, so none of it is on the warm path of :mod:`authsvc.verify.service`."""

from __future__ import annotations

from authsvc.compact_jws import unverified_issuer
from authsvc.errors import AuthsvcError, Code, RateLimited, Unauthenticated
from authsvc.principal import Principal
from authsvc.ratelimit.headers import rate_limit_headers
from authsvc.tenants.policy import TenantPolicy
from authsvc.verify.verdict import Verdict

KEY_REASONS: dict[Code, str] = {
    Code.DISABLED: "The key, a key it derives from, or its tenant is disabled.",
    Code.EXPIRED: "The key or a key it derives from has expired.",
    Code.REVOKED: "The key or a key it derives from has been revoked.",
}
TOKEN_ORIGIN_REASONS: dict[Code, str] = {
    Code.DISABLED: "The key that minted the token (or one it derives from) is disabled.",
    Code.EXPIRED: "The key that minted the token (or one it derives from) has expired.",
    Code.REVOKED: "The key that minted the token (or one it derives from) has been revoked.",
}


def wrong_audience(principal: Principal) -> Verdict:
    """The caller named an ``audience`` the token lacks."""
    return Verdict(
        Code.MALFORMED,
        "jwt",
        principal,
        reason="The token's audience does not include the one asked.",
    )


def issued_elsewhere(token: str, tenant: TenantPolicy) -> bool:
    """Whether the (unverified) ``iss`` of a compact JWT names another issuer."""
    iss = unverified_issuer(token)
    return iss is not None and iss != tenant.issuer


def caller_refusal(verdict: Verdict) -> AuthsvcError:
    """The error for a caller whose API key was not valid: :class:`RateLimited` (with the
    headers of the refusal) or :class:`Unauthenticated`."""
    if verdict.code is Code.RATE_LIMITED and verdict.decision is not None:
        return RateLimited(
            verdict.decision.retry_after_s,
            "Rate limit exceeded for this key.",
            headers=rate_limit_headers(verdict.decision),
        )
    if verdict.code in (Code.NOT_FOUND, Code.MALFORMED):
        return Unauthenticated("Unknown API key.")
    return Unauthenticated(f"The API key is {verdict.code.lower()}.")
