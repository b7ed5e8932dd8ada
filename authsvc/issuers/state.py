"""A trusted issuer as domain value: what an exchange and a check need (DESIGN §9).

A tenant trusts an identity provider (``issuer``) to vouch for its users: a JWT it signed
(keys from ``jwks_uri``, an inline ``jwks``, or OIDC discovery), for one of ``audiences``, with
an allowed algorithm and ``conditions`` met, is exchanged for a data token whose grants are
``grants`` with the referenced claims filled in. Services hand out :class:`IssuerState`, never
ORM rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authsvc.db.models import TrustedIssuer
from authsvc.issuers.claims import ClaimRef, Conditions, parse_conditions
from authsvc.issuers.jwks_cache import JwksSource
from authsvc.issuers.mapping import GrantTemplate, parse_grant_templates, parse_subject_claim
from authsvc.ratelimit.limits import RateLimitDef, ratelimits_from_json
from authsvc.scopes import Scope, covers


@dataclass(frozen=True, slots=True)
class IssuerState:
    id: str
    tenant_id: str
    issuer: str
    jwks_uri: str | None
    jwks: Mapping[str, Any] | None
    audiences: tuple[str, ...]
    algorithms: frozenset[str]
    subject_claim: ClaimRef
    conditions: Conditions
    conditions_json: Mapping[str, Any]
    grants: tuple[GrantTemplate, ...]
    ttl_s: int | None
    rps: int | None
    ratelimits: tuple[RateLimitDef, ...]
    allowed_origins: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @property
    def source(self) -> JwksSource:
        return JwksSource(
            cache_id=self.id,
            issuer=self.issuer,
            jwks_uri=self.jwks_uri,
            jwks=self.jwks,
            algorithms=self.algorithms,
        )

    def covers(self, scope: Scope) -> bool:
        """Whether a token minted through this issuer may still exercise ``scope`` (the
        issuer's grants as they are now; narrowing them narrows every live token)."""
        return any(covers(t.scope, scope) for t in self.grants)


def state_of(row: TrustedIssuer) -> IssuerState:
    """A stored issuer (validated on the way in)."""
    limits = row.limits or {}
    return IssuerState(
        id=row.id,
        tenant_id=row.tenant_id,
        issuer=row.issuer,
        jwks_uri=row.jwks_uri,
        jwks=row.jwks,
        audiences=tuple(row.audiences),
        algorithms=frozenset(row.algorithms),
        subject_claim=parse_subject_claim(row.subject_claim),
        conditions=parse_conditions(row.conditions),
        conditions_json=dict(row.conditions),
        grants=parse_grant_templates(row.grants),
        ttl_s=row.ttl_s,
        rps=limits.get("rps"),
        ratelimits=ratelimits_from_json(row.ratelimits),
        allowed_origins=tuple(row.allowed_origins),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
