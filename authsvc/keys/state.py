"""API keys as domain values: :class:`KeyState` for the hot path, :class:`KeyInfo` for management.

Services hand these out, never ORM rows. :class:`KeyState` holds only what a check needs
(it is cached for every key in use, so it stays small: times are Unix floats, grants and limits
are shared tuples); :class:`KeyInfo` is everything the management API shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authsvc.db.models import ApiKey
from authsvc.ratelimit.limits import RateLimitDef, ratelimits_from_json
from authsvc.scopes import ADMIN, Grant, grant_from_json


@dataclass(frozen=True, slots=True)
class KeyState:
    """One key as checks see it now. ``parent_id`` is the key it derives from (created by a
    non-ADMIN key), ``None`` for roots (ADMIN keys and keys created by ADMIN keys)."""

    id: str
    tenant_id: str
    parent_id: str | None
    grants: tuple[Grant, ...]
    ratelimits: tuple[RateLimitDef, ...]
    identity: str | None
    expires_at: float | None
    enabled: bool
    revoked: bool

    @property
    def admin(self) -> bool:
        return any(g.scope.type == ADMIN for g in self.grants)


def state_of(row: ApiKey) -> KeyState:
    return KeyState(
        id=row.id,
        tenant_id=row.tenant_id,
        parent_id=row.parent_id,
        grants=tuple(grant_from_json(g) for g in row.grants),
        ratelimits=ratelimits_from_json(row.ratelimits),
        identity=row.identity,
        expires_at=None if row.expires_at is None else row.expires_at.timestamp(),
        enabled=row.enabled,
        revoked=row.revoked_at is not None,
    )


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as the management API shows it (never its secret or hash)."""

    id: str
    tenant_id: str
    parent_id: str | None
    name: str
    start: str
    grants: tuple[Grant, ...]
    ratelimits: tuple[RateLimitDef, ...]
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

    @property
    def state(self) -> KeyState:
        return KeyState(
            id=self.id,
            tenant_id=self.tenant_id,
            parent_id=self.parent_id,
            grants=self.grants,
            ratelimits=self.ratelimits,
            identity=self.identity,
            expires_at=None if self.expires_at is None else self.expires_at.timestamp(),
            enabled=self.enabled,
            revoked=self.revoked_at is not None,
        )


def info_of(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        tenant_id=row.tenant_id,
        parent_id=row.parent_id,
        name=row.name,
        start=row.start,
        grants=tuple(grant_from_json(g) for g in row.grants),
        ratelimits=ratelimits_from_json(row.ratelimits),
        identity=row.identity,
        expires_at=row.expires_at,
        enabled=row.enabled,
        revoked_at=row.revoked_at,
        metadata=dict(row.meta),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_used_at=row.last_used_at,
        previous_expires_at=row.previous_expires_at,
    )


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A key just created or rerolled, with its secret (shown once)."""

    info: KeyInfo
    key: str
