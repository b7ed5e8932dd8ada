from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from authsvc.web.schemas import GrantOut, Name, RateLimitIn, RateLimitOut, ScopeIn

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    scopes: list[ScopeIn]
    ratelimits: list[RateLimitIn] = []
    identity: str | None = None
    expires_at: AwareDatetime | None = None
    metadata: dict[str, Any] = {}


class KeyPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    scopes: list[ScopeIn] | UnsetType = UNSET
    ratelimits: list[RateLimitIn] | UnsetType = UNSET
    identity: str | UnsetType | None = UNSET
    expires_at: AwareDatetime | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET


class RerollIn(msgspec.Struct, forbid_unknown_fields=True):
    grace_s: int = 0


class KeyOut(msgspec.Struct):
    id: str
    tenant_id: str
    parent_id: str | None
    """The key this one derives from (created by a non-ADMIN key); ``null`` for roots."""
    name: str
    start: str
    scopes: list[GrantOut]
    ratelimits: list[RateLimitOut]
    identity: str | None
    expires_at: datetime | None
    enabled: bool
    revoked_at: datetime | None
    metadata: dict[str, Any]
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
    previous_expires_at: datetime | None


class KeyCreated(KeyOut, kw_only=True):
    key: str


class KeyPage(msgspec.Struct):
    data: list[KeyOut]
    next_cursor: str | None
