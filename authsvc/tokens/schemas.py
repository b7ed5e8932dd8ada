"""Request and response bodies of ``/v1/tokens``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from authsvc.web.schemas import Name, RateLimitIn, ScopeIn

Text200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Audience = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class TokenLimitsIn(msgspec.Struct, forbid_unknown_fields=True):
    rps: int


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    scopes: list[ScopeIn]
    ttl_s: int | None = None
    sub: Text200 | None = None
    aud: Audience | list[Audience] | None = None
    name: Name | None = None
    limits: TokenLimitsIn | None = None
    ratelimits: list[RateLimitIn] = []
    """Limits of the token's subject, on top of those of the key it is minted from."""


class TokenCreated(msgspec.Struct):
    token: str
    token_type: str
    expires_in: int
    expires_at: datetime
    jti: str


class TokenRevoke(msgspec.Struct, forbid_unknown_fields=True):
    jti: Text200 | None = None
    sub: Text200 | None = None
    key_id: Text200 | None = None


class TokenRevoked(msgspec.Struct):
    revoked: str
    """Which field was revoked: ``jti``, ``sub`` or ``key_id``."""
    value: str
    cutoff: datetime
    """Tokens issued up to this instant are revoked (for ``sub`` and ``key_id``)."""
    expires_at: datetime
    """When the revocation record can be dropped: every token it matches has expired."""
