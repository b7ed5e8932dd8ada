"""API key management: create, read, change, revoke and reroll, each bounded by its caller.

Authority (who may act on which key, and how far) is :mod:`authsvc.keys.authority`; this module
applies it inside each transaction, so the target is read and checked under the same row lock
that changes it. A refused call changes nothing.

Consistency: every change is committed first, together with its audit row and a revocation
event; the event is then published so every instance drops its cached state of the key (see
:mod:`authsvc.revocation`). Revoking a key also marks its whole subtree revoked and revokes the
tokens minted from it so far; disabling or narrowing a key takes effect on its subtree through
the lineage every check evaluates (:mod:`authsvc.keys.cache`). Reroll keeps the previous
secret valid for ``grace_s`` seconds and revokes the tokens minted before it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import ApiKey, Tenant
from authsvc.db.pagination import paginate
from authsvc.errors import Code, InvalidRequest, NotFound
from authsvc.ids import new_id
from authsvc.keys import secret as keysecret
from authsvc.keys.authority import child_expiry, narrowed, visible
from authsvc.keys.state import CreatedKey, KeyInfo, info_of
from authsvc.keys.store import MAX_DEPTH
from authsvc.keys.tree import ancestors_of, subtree_of
from authsvc.principal import Principal
from authsvc.ratelimit.limits import RateLimitDef, parse_ratelimits
from authsvc.revocation.events import RevocationBus, RevocationEvent, horizon
from authsvc.revocation.events import record as record_revocation
from authsvc.scopes import ADMIN, Grant, downscope, parse_grants

MAX_METADATA_BYTES = 8192
MAX_GRACE_S = 30 * 86400
MAX_NAME = 200
MAX_IDENTITY = 200


async def _key_events(
    session: AsyncSession, key_id: str, tenant_id: str, now: datetime
) -> list[RevocationEvent]:
    """Drop the key from every cache and revoke the tokens minted from it so far (a cutoff kept
    as long as such a token can live, then pruned)."""
    tenant = await session.get(Tenant, tenant_id)
    until = (
        None if tenant is None else horizon(now, tenant.max_token_ttl_s, tenant.token_horizon_at)
    )
    return [
        RevocationEvent(tenant_id, "key", key_id, now),
        RevocationEvent(tenant_id, "key_tokens", key_id, now, until),
    ]


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidRequest(f"name must be 1 to {MAX_NAME} characters.", code=Code.INVALID_NAME)
    return name


def check_identity(identity: str | None) -> str | None:
    if identity is not None and not 1 <= len(identity) <= MAX_IDENTITY:
        raise InvalidRequest(
            f"identity must be 1 to {MAX_IDENTITY} characters.", code=Code.INVALID_IDENTITY
        )
    return identity


def _check_metadata(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    meta = dict(meta or {})
    if len(json.dumps(meta)) > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes.",
            code=Code.INVALID_METADATA,
        )
    return meta


class KeyService:
    def __init__(
        self, db: SessionFactory, clock: Clock, hasher: keysecret.KeyHasher, bus: RevocationBus
    ) -> None:
        self._db, self._clock, self._hasher, self._bus = db, clock, hasher, bus

    # --- creation -------------------------------------------------------------------------

    async def insert_key(
        self,
        session: AsyncSession,
        *,
        tenant_id: str,
        name: str,
        grants: Sequence[Grant],
        now: datetime,
        created_by: str | None,
        parent_id: str | None = None,
        ratelimits: Sequence[RateLimitDef] = (),
        identity: str | None = None,
        expires_at: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CreatedKey:
        """Insert a key in ``session`` (tenant creation uses it for the first ADMIN key)."""
        key = keysecret.generate("api")
        row = ApiKey(
            id=new_id("key", now.timestamp()),
            tenant_id=tenant_id,
            parent_id=parent_id,
            name=name,
            key_hash=self._hasher.digest(key),
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
        return CreatedKey(info_of(row), key)

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
        name = check_name(name)
        grants = downscope(principal.grants, parse_grants(list(scopes)))
        limits = parse_ratelimits(ratelimits)
        if expires_at is not None and expires_at <= now:
            raise InvalidRequest("expires_at must be in the future.", code=Code.INVALID_EXPIRY)
        expiry = child_expiry(principal, expires_at)
        parent_id = None if principal.admin or principal.kind != "key" else principal.id
        async with self._db.begin() as session:
            if parent_id is not None:
                depth = len((await session.scalars(ancestors_of(parent_id))).all())
                if depth + 1 >= MAX_DEPTH:
                    raise InvalidRequest(
                        f"Keys derive from keys at most {MAX_DEPTH} levels deep.",
                        code=Code.KEY_TOO_DEEP,
                    )
            created = await self.insert_key(
                session,
                tenant_id=principal.tenant,
                name=name,
                grants=grants,
                now=now,
                created_by=principal.id,
                parent_id=parent_id,
                ratelimits=limits,
                identity=check_identity(identity),
                expires_at=expiry,
                metadata=_check_metadata(metadata),
            )
            self._audit(session, principal, "key.create", created.info.id, now, {"name": name})
        return created

    # --- reads ----------------------------------------------------------------------------

    async def get(self, principal: Principal, key_id: str) -> KeyInfo:
        principal.require("KEYS:READ")
        async with self._db() as session:
            return info_of(await self._target(session, principal, key_id))

    async def list(
        self, principal: Principal, *, limit: int | None, cursor: str | None
    ) -> tuple[list[KeyInfo], str | None]:
        principal.require("KEYS:READ")
        stmt = select(ApiKey).where(ApiKey.tenant_id == principal.tenant)
        if not principal.admin:
            stmt = stmt.where(ApiKey.id.in_(subtree_of(principal.tenant, principal.id)))
        async with self._db() as session:
            rows, next_cursor = await paginate(session, stmt, ApiKey.id, limit=limit, cursor=cursor)
        return [info_of(r) for r in rows], next_cursor

    async def visible(self, principal: Principal, key_id: str) -> bool:
        """Whether ``key_id`` exists and is within what ``principal`` manages."""
        async with self._db() as session:
            try:
                await self._target(session, principal, key_id)
            except NotFound:
                return False
        return True

    # --- changes --------------------------------------------------------------------------

    async def update(
        self, principal: Principal, key_id: str, changes: Mapping[str, Any]
    ) -> KeyInfo:
        """Apply ``changes`` (the fields present; ``None`` clears identity or expiry)."""
        principal.require("KEYS:WRITE")
        now = self._clock.now()
        values = self._parse_changes(changes)
        async with self._db.begin() as session:
            row = await self._target(session, principal, key_id, lock=True)
            if not principal.admin:
                values = narrowed(info_of(row), values)
            if "grants" in values:
                grants = downscope(principal.grants, values.pop("grants"))
                values["grants"] = [g.to_json() for g in grants]
                if any(g.scope.type == ADMIN for g in grants):
                    values["parent_id"] = None  # an ADMIN key is a root
            if "ratelimits" in values:
                values["ratelimits"] = [r.to_json() for r in values["ratelimits"]]
            for field_name, value in values.items():
                setattr(row, "meta" if field_name == "metadata" else field_name, value)
            row.updated_at = now
            event = RevocationEvent(row.tenant_id, "key", row.id, now)
            record_revocation(session, event, now=now)
            self._audit(session, principal, "key.update", row.id, now, {"fields": sorted(values)})
        await self._bus.publish([event])
        return info_of(row)

    async def revoke(self, principal: Principal, key_id: str) -> KeyInfo:
        """Revoke a key, its whole subtree, and every token minted from them. Idempotent."""
        principal.require("KEYS:WRITE")
        now = self._clock.now()
        async with self._db.begin() as session:
            row = await self._target(session, principal, key_id, lock=True)
            await session.execute(
                update(ApiKey)
                .where(
                    ApiKey.id.in_(subtree_of(row.tenant_id, row.id)), ApiKey.revoked_at.is_(None)
                )
                .values(revoked_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.refresh(row)
            events = await _key_events(session, row.id, row.tenant_id, now)
            for event in events:
                record_revocation(session, event, now=now)
            self._audit(session, principal, "key.revoke", row.id, now, {})
        await self._bus.publish(events)
        return info_of(row)

    async def reroll(self, principal: Principal, key_id: str, grace_s: int) -> CreatedKey:
        principal.require("KEYS:WRITE")
        if not 0 <= grace_s <= MAX_GRACE_S:
            raise InvalidRequest(
                f"grace_s must be between 0 and {MAX_GRACE_S}.", code=Code.INVALID_GRACE
            )
        now = self._clock.now()
        key = keysecret.generate("api")
        async with self._db.begin() as session:
            row = await self._target(session, principal, key_id, lock=True)
            if row.revoked_at is not None:
                raise InvalidRequest("A revoked key cannot be rerolled.", code=Code.KEY_REVOKED)
            row.previous_key_hash = row.key_hash if grace_s > 0 else None
            row.previous_expires_at = now + timedelta(seconds=grace_s) if grace_s > 0 else None
            row.key_hash = self._hasher.digest(key)
            row.start = keysecret.display_start(key)
            row.updated_at = now
            events = await _key_events(session, row.id, row.tenant_id, now)
            for event in events:
                record_revocation(session, event, now=now)
            self._audit(session, principal, "key.reroll", row.id, now, {"grace_s": grace_s})
        await self._bus.publish(events)
        return CreatedKey(info_of(row), key)

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _parse_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = check_name(changes["name"])
        if "scopes" in changes:
            values["grants"] = parse_grants(list(changes["scopes"]))
        if "ratelimits" in changes:
            values["ratelimits"] = parse_ratelimits(changes["ratelimits"])
        if "identity" in changes:
            values["identity"] = check_identity(changes["identity"])
        if "expires_at" in changes:
            values["expires_at"] = changes["expires_at"]
        if "enabled" in changes:
            values["enabled"] = bool(changes["enabled"])
        if "metadata" in changes:
            values["metadata"] = _check_metadata(changes["metadata"])
        return values

    @staticmethod
    async def _target(
        session: AsyncSession, principal: Principal, key_id: str, *, lock: bool = False
    ) -> ApiKey:
        """The key ``principal`` asks about, if it may manage it; else 404 (no oracle)."""
        stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == principal.tenant)
        if lock:
            stmt = stmt.with_for_update()
        row = await session.scalar(stmt)
        if row is not None and not principal.admin and row.id != principal.id:
            ancestors = [str(a) for a in (await session.scalars(ancestors_of(row.id))).all()]
            if not visible(principal, row.id, ancestors):
                row = None
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
