"""An authenticated credential as it stands now: the caller of an operation, the subject of a
verdict, the parent of a token being minted.

Every credential that passed the check pipeline (:mod:`authsvc.verify.service`) is described by
one :class:`Principal`: an API key, a JWT of the tenant, an identity provider's token accepted
through a trusted issuer, or the operator. Its ``grants`` and ``expires_at`` are what it may
exercise *now*: a key's grants bounded by each of its ancestors' (DESIGN §8), a JWT's bounded by
the key it was minted from, the earliest expiry along the way. Services check authority with
:meth:`Principal.require`, and minting hands out at most :attr:`Principal.grants`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from authsvc.errors import Forbidden
from authsvc.ratelimit.limits import RateLimitDef
from authsvc.scopes import ADMIN, Grant, find_grant, parse_scope

Kind = Literal["operator", "key", "jwt", "issuer"]


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What a JWT carries besides its grants, passed on when it is exchanged."""

    jti: str
    chain: tuple[str, ...] = ()
    """jtis of the JWTs this one was exchanged from (revoking one revokes it)."""
    limits: Mapping[str, int] | None = None
    ratelimits: tuple[RateLimitDef, ...] = ()
    audiences: tuple[str, ...] = ()
    name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    """The verified claims, for introspection."""


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    id: str
    """The key id; for a JWT the key (or trusted issuer) it was minted from (``client_id``)."""
    tenant_id: str | None = None
    tenant_slug: str | None = None
    grants: tuple[Grant, ...] = ()
    expires_at: datetime | None = None
    """When the credential stops working (nothing minted or created from it outlives it)."""
    sub: str | None = None
    """A JWT's subject, or a key's identity."""
    token: TokenFacts | None = None

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def admin(self) -> bool:
        """An ADMIN key (a root of its tenant), or the operator acting for the tenant."""
        return any(g.scope.type == ADMIN for g in self.grants)

    @property
    def default_sub(self) -> str:
        """The subject of a token minted from this credential when none is asked for."""
        if self.kind in ("jwt", "issuer") and self.sub is not None:
            return self.sub
        return self.id

    def has(self, scope: str) -> bool:
        return find_grant(self.grants, parse_scope(scope)) is not None

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise Forbidden(f"This operation requires the {scope} scope.")

    @property
    def tenant(self) -> str:
        """The tenant id of a key principal (operator principals have none)."""
        if self.tenant_id is None:
            raise Forbidden("This operation needs an API key of a tenant.")
        return self.tenant_id
