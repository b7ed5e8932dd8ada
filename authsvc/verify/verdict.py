"""The result of checking a credential: data, never an exception.

A :class:`Verdict` is what ``POST /v1/verify`` returns and what ``/v1/authz`` turns into a
status code. ``code`` is one of :data:`~authsvc.errors.VERDICT_CODES`; only ``VALID`` has
``valid = True``. ``reason`` is a short human sentence saying why (never credential material).

What a denial reveals: ``MALFORMED``, ``NOT_FOUND`` and ``INVALID_SIGNATURE`` identify nothing
(no principal: a credential of another tenant is indistinguishable from an unknown one). The
other denials concern a credential the caller's tenant owns, so they carry its
:class:`~authsvc.principal.Principal` (tenant, key id, subject, grants, expiry) to help the
caller explain the refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from authsvc.errors import Code
from authsvc.principal import Principal
from authsvc.ratelimit.types import Decision, LimitState
from authsvc.scopes import ParamValue

CredentialKind = Literal["api_key", "jwt", "unknown"]


@dataclass(frozen=True, slots=True)
class Verdict:
    code: Code
    kind: CredentialKind = "unknown"
    principal: Principal | None = None
    """The credential, when the caller's tenant owns it (see the module docstring)."""
    fixed_params: Mapping[str, ParamValue] = field(default_factory=dict)
    """The filters of the grants that matched the required scopes, met (``{}``: none asked)."""
    decision: Decision | None = None
    """The rate-limit decision, when limits applied (states, retry-after, degraded)."""
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.code is Code.VALID

    @property
    def limit_states(self) -> tuple[LimitState, ...]:
        return () if self.decision is None else self.decision.states

    def to_json(self) -> dict[str, Any]:
        p = self.principal
        return {
            "valid": self.valid,
            "code": self.code,
            "tenant": None if p is None else p.tenant_slug,
            "tenant_id": None if p is None else p.tenant_id,
            "key_id": None if p is None else p.id,
            "sub": None if p is None else p.sub,
            "scopes": [] if p is None else [g.to_json() for g in p.grants],
            "fixed_params": dict(self.fixed_params),
            "expires_at": None if p is None else p.expires_at,
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
