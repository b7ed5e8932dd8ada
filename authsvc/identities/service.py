"""Identities.

An identity is addressed by the tenant's own external id. Its limits are counted once for all
keys whose ``identity`` names it, so a customer with five keys cannot get five times the quota.
Upserting an identity changes the limits' parameters but never resets their counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import Identity
from authsvc.errors import InvalidRequest, NotFound
from authsvc.keys.limits import RateLimitDef, parse_ratelimits, ratelimits_from_json
from authsvc.principal import Principal
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation


class IdentityService:
    def __init__(self, db: SessionFactory, clock: Clock, bus: RevocationBus) -> None:
        self._db, self._clock, self._bus = db, clock, bus

    async def put(
        self,
        principal: Principal,
        external_id: str,
        *,
        ratelimits: Sequence[Any],
        metadata: dict[str, Any] | None,
    ) -> Identity:
        principal.require("KEYS:WRITE")
        if not 1 <= len(external_id) <= 200:
            raise InvalidRequest(
                "external_id must be 1 to 200 characters.", code="INVALID_IDENTITY"
            )
        limits = parse_ratelimits(ratelimits)
        # Read-then-insert: concurrent first PUTs of one id race on the primary key. The loser
        # retries once, and then finds the row (locked FOR UPDATE) and updates it.
        try:
            row, event = await self._put_once(principal, external_id, limits, metadata)
        except IntegrityError:
            row, event = await self._put_once(principal, external_id, limits, metadata)
        await self._bus.publish([event])
        return row

    async def _put_once(
        self,
        principal: Principal,
        external_id: str,
        limits: Sequence[RateLimitDef],
        metadata: dict[str, Any] | None,
    ) -> tuple[Identity, RevocationEvent]:
        now = self._clock.now()
        async with self._db.begin() as session:
            row = await session.get(Identity, (principal.tenant, external_id), with_for_update=True)
            if row is None:
                row = Identity(
                    tenant_id=principal.tenant,
                    external_id=external_id,
                    created_at=now,
                )
                session.add(row)
            row.ratelimits = [r.to_json() for r in limits]
            row.meta = metadata or {}
            row.updated_at = now
            # Keys cache their identity's limits: tell instances to drop them.
            event = RevocationEvent(principal.tenant, "key", f"identity:{external_id}", now)
            record_revocation(session, event, now=now)
            audit(
                session,
                now=now,
                actor=principal.actor,
                action="identity.put",
                target_type="identity",
                target_id=external_id,
                tenant_id=principal.tenant,
            )
        return row, event

    async def get(self, principal: Principal, external_id: str) -> Identity:
        principal.require("KEYS:READ")
        async with self._db() as session:
            row = await session.get(Identity, (principal.tenant, external_id))
        if row is None:
            raise NotFound("No such identity.")
        return row

    async def limits(self, tenant_id: str, external_id: str) -> tuple[RateLimitDef, ...]:
        """The identity's limits (hot path; callers cache)."""
        async with self._db() as session:
            row = await session.get(Identity, (tenant_id, external_id))
        return () if row is None else ratelimits_from_json(row.ratelimits)
