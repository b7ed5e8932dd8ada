"""API keys: creation under down-scoping, lookup by keyed hash, revocation, reroll.

Lookup (:meth:`KeyService.lookup`) builds a :class:`KeyRecord`, the immutable, cacheable view
the hot path needs (key + tenant state); :func:`key_status` turns it into a verdict code in the
documented order: tenant enabled → key enabled → expiry → revocation.

Consistency: every change is committed to the database first, together with its audit row and a
revocation event; the event is then published so every instance drops its cached record (see
:mod:`authsvc.revocation`). Reroll keeps the previous secret valid for ``grace_s`` seconds, and a
key found through its previous secret expires when the grace ends; tokens minted from the key
before the reroll are revoked at once, and tokens minted with the old secret during the grace
never outlive it (their expiry is capped at the secret's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import ApiKey, Tenant
from authsvc.db.pagination import paginate
from authsvc.errors import InvalidRequest, NotFound
from authsvc.ids import new_id
from authsvc.keys import secret as keysecret
from authsvc.keys.limits import RateLimitDef, parse_ratelimits, ratelimits_from_json
from authsvc.principal import Principal
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation
from authsvc.scopes import Grant, downscope, grant_from_json, parse_grants

MAX_METADATA_BYTES = 8192
MAX_GRACE_S = 30 * 86400


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as the hot path sees it. ``expires_at`` is the effective expiry of the secret
    that was presented (a previous secret expires when its reroll grace ends)."""

    id: str
    tenant_id: str
    tenant_slug: str
    tenant_enabled: bool
    name: str
    grants: tuple[Grant, ...]
    ratelimits: tuple[RateLimitDef, ...]
    identity: str | None
    expires_at: datetime | None
    enabled: bool
    revoked_at: datetime | None


def key_status(record: KeyRecord, now: datetime) -> str:
    """``VALID`` or the first failing check's code, in the documented order."""
    if not record.tenant_enabled or not record.enabled:
        return "DISABLED"
    if record.expires_at is not None and record.expires_at <= now:
        return "EXPIRED"
    if record.revoked_at is not None:
        return "REVOKED"
    return "VALID"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKey
    key: str


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _record(row: ApiKey, tenant: Tenant, *, via_previous: bool) -> KeyRecord:
    expires = _earliest(row.expires_at, row.previous_expires_at) if via_previous else row.expires_at
    return KeyRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        tenant_slug=tenant.slug,
        tenant_enabled=tenant.enabled,
        name=row.name,
        grants=tuple(grant_from_json(g) for g in row.grants),
        ratelimits=ratelimits_from_json(row.ratelimits),
        identity=row.identity,
        expires_at=expires,
        enabled=row.enabled,
        revoked_at=row.revoked_at,
    )


def _key_events(row: ApiKey, now: datetime) -> list[RevocationEvent]:
    """Drop the key from every cache and revoke the tokens minted from it so far."""
    return [
        RevocationEvent(row.tenant_id, "key", row.id, now),
        RevocationEvent(row.tenant_id, "key_tokens", row.id, now),
    ]


def _check_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(meta)) > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes.",
            code="INVALID_METADATA",
        )
    return meta


def _check_identity(identity: str | None) -> str | None:
    if identity is not None and not 1 <= len(identity) <= 200:
        raise InvalidRequest("identity must be 1 to 200 characters.", code="INVALID_IDENTITY")
    return identity


class KeyService:
    def __init__(
        self, db: SessionFactory, clock: Clock, hash_secret: bytes, bus: RevocationBus
    ) -> None:
        self._db, self._clock, self._hash_secret, self._bus = db, clock, hash_secret, bus

    def hash(self, key: str) -> str:
        return keysecret.key_hash(key, self._hash_secret)

    # --- hot path -----------------------------------------------------------------------

    async def lookup(self, key: str) -> KeyRecord | None:
        """The record for a well-formed API key, or ``None`` if no key has this secret."""
        digest = self.hash(key)
        stmt = (
            select(ApiKey, Tenant)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(or_(ApiKey.key_hash == digest, ApiKey.previous_key_hash == digest))
        )
        async with self._db() as session:
            row = (await session.execute(stmt)).first()
        if row is None:
            return None
        api_key, tenant = row
        return _record(api_key, tenant, via_previous=api_key.key_hash != digest)

    async def record_by_id(self, tenant_id: str, key_id: str) -> KeyRecord | None:
        """The current record of a key by id (the key that minted a JWT), or ``None``."""
        stmt = (
            select(ApiKey, Tenant)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
        )
        async with self._db() as session:
            row = (await session.execute(stmt)).first()
        if row is None:
            return None
        return _record(row[0], row[1], via_previous=False)

    # --- management ---------------------------------------------------------------------

    async def insert_key(
        self,
        session: AsyncSession,
        *,
        tenant_id: str,
        name: str,
        grants: Sequence[Grant],
        now: datetime,
        created_by: str | None,
        ratelimits: Sequence[RateLimitDef] = (),
        identity: str | None = None,
        expires_at: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CreatedKey:
        key = keysecret.generate("api")
        row = ApiKey(
            id=new_id("key", now.timestamp()),
            tenant_id=tenant_id,
            name=name,
            key_hash=self.hash(key),
            start=keysecret.display_start(key),
            previous_key_hash=None,
            previous_expires_at=None,
            grants=[g.to_json() for g in grants],
            ratelimits=[r.to_json() for r in ratelimits],
            identity=identity,
            expires_at=expires_at,
            enabled=True,
            revoked_at=None,
            meta=metadata or {},
            created_by=created_by,
            created_at=now,
            updated_at=now,
            last_used_at=None,
        )
        session.add(row)
        await session.flush()
        return CreatedKey(row, key)

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: Sequence[Any],
        ratelimits: Sequence[Any] = (),
        identity: str | None = None,
        expires_at: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CreatedKey:
        principal.require("KEYS:WRITE")
        now = self._clock.now()
        name = _check_name(name)
        grants = downscope(principal.grants, parse_grants(list(scopes)))
        limits = parse_ratelimits(ratelimits)
        if expires_at is not None and expires_at <= now:
            raise InvalidRequest("expires_at must be in the future.", code="INVALID_EXPIRY")
        async with self._db.begin() as session:
            created = await self.insert_key(
                session,
                tenant_id=principal.tenant,
                name=name,
                grants=grants,
                now=now,
                created_by=principal.id,
                ratelimits=limits,
                identity=_check_identity(identity),
                expires_at=expires_at,
                metadata=_check_metadata(metadata or {}),
            )
            self._audit(session, principal, "key.create", created.record.id, now, {"name": name})
        return created

    async def get(self, principal: Principal, key_id: str) -> ApiKey:
        principal.require("KEYS:READ")
        async with self._db() as session:
            return await self._load(session, principal.tenant, key_id)

    async def list(
        self, principal: Principal, *, limit: int | None, cursor: str | None
    ) -> tuple[Sequence[ApiKey], str | None]:
        principal.require("KEYS:READ")
        stmt = select(ApiKey).where(ApiKey.tenant_id == principal.tenant)
        async with self._db() as session:
            return await paginate(session, stmt, ApiKey.id, limit=limit, cursor=cursor)

    async def update(self, principal: Principal, key_id: str, changes: dict[str, Any]) -> ApiKey:
        """Apply ``changes`` (only the fields present; ``None`` clears identity/expiry)."""
        principal.require("KEYS:WRITE")
        now = self._clock.now()
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = _check_name(changes["name"])
        if "scopes" in changes:
            grants = downscope(principal.grants, parse_grants(list(changes["scopes"])))
            values["grants"] = [g.to_json() for g in grants]
        if "ratelimits" in changes:
            values["ratelimits"] = [r.to_json() for r in parse_ratelimits(changes["ratelimits"])]
        if "identity" in changes:
            values["identity"] = _check_identity(changes["identity"])
        if "expires_at" in changes:
            values["expires_at"] = changes["expires_at"]
        if "enabled" in changes:
            values["enabled"] = bool(changes["enabled"])
        if "metadata" in changes:
            values["metadata"] = _check_metadata(changes["metadata"] or {})
        async with self._db.begin() as session:
            row = await self._load(session, principal.tenant, key_id, lock=True)
            for field_name, value in values.items():
                setattr(row, "meta" if field_name == "metadata" else field_name, value)
            row.updated_at = now
            event = RevocationEvent(row.tenant_id, "key", row.id, now)
            record_revocation(session, event, now=now)
            self._audit(session, principal, "key.update", row.id, now, {"fields": sorted(values)})
        await self._bus.publish([event])
        return row

    async def revoke(self, principal: Principal, key_id: str) -> ApiKey:
        """Revoke a key and every token minted from it so far. Idempotent."""
        principal.require("KEYS:WRITE")
        now = self._clock.now()
        async with self._db.begin() as session:
            row = await self._load(session, principal.tenant, key_id, lock=True)
            if row.revoked_at is None:
                row.revoked_at = now
                row.updated_at = now
            events = _key_events(row, now)
            for event in events:
                record_revocation(session, event, now=now)
            self._audit(session, principal, "key.revoke", row.id, now, {})
        await self._bus.publish(events)
        return row

    async def reroll(self, principal: Principal, key_id: str, grace_s: int) -> CreatedKey:
        principal.require("KEYS:WRITE")
        if not 0 <= grace_s <= MAX_GRACE_S:
            raise InvalidRequest(
                f"grace_s must be between 0 and {MAX_GRACE_S}.", code="INVALID_GRACE"
            )
        now = self._clock.now()
        key = keysecret.generate("api")
        async with self._db.begin() as session:
            row = await self._load(session, principal.tenant, key_id, lock=True)
            if row.revoked_at is not None:
                raise InvalidRequest("A revoked key cannot be rerolled.", code="KEY_REVOKED")
            row.previous_key_hash = row.key_hash if grace_s > 0 else None
            row.previous_expires_at = now + timedelta(seconds=grace_s) if grace_s > 0 else None
            row.key_hash = self.hash(key)
            row.start = keysecret.display_start(key)
            row.updated_at = now
            events = _key_events(row, now)
            for event in events:
                record_revocation(session, event, now=now)
            self._audit(session, principal, "key.reroll", row.id, now, {"grace_s": grace_s})
        await self._bus.publish(events)
        return CreatedKey(row, key)

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    async def _load(
        session: AsyncSession, tenant_id: str, key_id: str, *, lock: bool = False
    ) -> ApiKey:
        stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
        if lock:
            stmt = stmt.with_for_update()
        row = await session.scalar(stmt)
        if row is None:
            raise NotFound("No such key.")
        return row

    @staticmethod
    def _audit(
        session: AsyncSession,
        principal: Principal,
        action: str,
        key_id: str,
        now: datetime,
        details: dict[str, Any],
    ) -> None:
        audit(
            session,
            now=now,
            actor=principal.actor,
            action=action,
            target_type="key",
            target_id=key_id,
            tenant_id=principal.tenant,
            details=details,
        )


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidRequest("name must be 1 to 200 characters.", code="INVALID_NAME")
    return name
