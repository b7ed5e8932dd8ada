"""The result of checking a credential: data, never an exception.

A :class:`Verdict` is what ``POST /v1/verify`` returns and what ``/v1/authz`` turns into a
status code. ``code`` is one of :data:`CODES`; only ``VALID`` has ``valid = True``.

What a denial reveals: ``MALFORMED``, ``NOT_FOUND`` and ``INVALID_SIGNATURE`` identify nothing
(no tenant, no key id: a credential of another tenant is indistinguishable from an unknown
one). The other denials concern a credential the caller's tenant owns, so they carry its
identity (tenant, key id, subject, grants, expiry) to help the caller explain the refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from authsvc.ratelimit.types import Decision, LimitState
from authsvc.scopes import Grant, ParamValue

Code = Literal[
    "VALID",
    "NOT_FOUND",
    "MALFORMED",
    "EXPIRED",
    "REVOKED",
    "DISABLED",
    "FORBIDDEN",
    "RATE_LIMITED",
    "INVALID_SIGNATURE",
]
CODES: tuple[Code, ...] = (
    "VALID",
    "NOT_FOUND",
    "MALFORMED",
    "EXPIRED",
    "REVOKED",
    "DISABLED",
    "FORBIDDEN",
    "RATE_LIMITED",
    "INVALID_SIGNATURE",
)
#: Codes meaning "no usable credential" (HTTP 401 at a gateway); the others are 403.
UNAUTHENTICATED_CODES = frozenset(
    {"NOT_FOUND", "MALFORMED", "EXPIRED", "REVOKED", "DISABLED", "INVALID_SIGNATURE"}
)
CredentialKind = Literal["api_key", "jwt", "unknown"]


@dataclass(frozen=True, slots=True)
class Verdict:
    code: Code
    kind: CredentialKind = "unknown"
    tenant_slug: str | None = None
    tenant_id: str | None = None
    key_id: str | None = None
    sub: str | None = None
    grants: tuple[Grant, ...] = ()
    fixed_params: Mapping[str, ParamValue] = field(default_factory=dict)
    expires_at: datetime | None = None
    decision: Decision | None = None
    """The rate-limit decision, when limits applied (states, retry-after, degraded)."""
    reason: str | None = None
    """A short human sentence; never contains credential material."""

    @property
    def valid(self) -> bool:
        return self.code == "VALID"

    @property
    def limit_states(self) -> tuple[LimitState, ...]:
        return () if self.decision is None else self.decision.states

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "code": self.code,
            "tenant": self.tenant_slug,
            "tenant_id": self.tenant_id,
            "key_id": self.key_id,
            "sub": self.sub,
            "scopes": [g.to_json() for g in self.grants],
            "fixed_params": dict(self.fixed_params),
            "expires_at": self.expires_at,
            "ratelimits": [
                {
                    "name": s.name,
                    "limit": s.limit,
                    "remaining": s.remaining,
                    "reset_s": round(s.reset_s, 3),
                }
                for s in self.limit_states
            ],
            "reason": self.reason,
        }


def denied(code: Code, reason: str, kind: CredentialKind = "unknown") -> Verdict:
    """A denial that identifies nothing (unknown, malformed or forged credential)."""
    return Verdict(code=code, kind=kind, reason=reason)
