"""Identities.

An identity is addressed by the tenant's own external id. Its limits are counted once for all
keys whose ``identity`` names it, so a customer with five keys cannot get five times the quota.
Upserting an identity changes the limits' parameters but never resets their counters.

Authority (DESIGN §8, "changes only narrow"): an identity's limits bind every key that names it,
including, possibly, the caller's own, so a non-ADMIN caller may only tighten them: every
existing limit kept, at most as permissive, new ones added. Creating an identity only adds
limits. Only ADMIN loosens or removes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import Identity
from authsvc.errors import Code, InvalidRequest, NotFound, ScopeEscalation
from authsvc.keys.cache import IDENTITY_PREFIX
from authsvc.keys.service import MAX_IDENTITY
from authsvc.principal import Principal
from authsvc.ratelimit.limits import (
    RateLimitDef,
    loosened,
    parse_ratelimits,
    ratelimits_from_json,
)
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    external_id: str
    ratelimits: tuple[RateLimitDef, ...]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _info(row: Identity) -> IdentityInfo:
    return IdentityInfo(
        row.external_id,
        ratelimits_from_json(row.ratelimits),
        dict(row.meta),
        row.created_at,
        row.updated_at,
    )


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
    ) -> IdentityInfo:
        principal.require("KEYS:WRITE")
        if not 1 <= len(external_id) <= MAX_IDENTITY:
            raise InvalidRequest(
                f"external_id must be 1 to {MAX_IDENTITY} characters.", code=Code.INVALID_IDENTITY
            )
        limits = parse_ratelimits(ratelimits)
        # Read-then-insert: concurrent first PUTs of one id race on the primary key. The loser
        # retries once, and then finds the row (locked FOR UPDATE) and updates it.
        try:
            row, event = await self._put_once(principal, external_id, limits, metadata)
        except IntegrityError:
            row, event = await self._put_once(principal, external_id, limits, metadata)
        await self._bus.publish([event])
        return _info(row)

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
            elif not principal.admin:
                loose = loosened(ratelimits_from_json(row.ratelimits), limits)
                if loose is not None:
                    raise ScopeEscalation("ratelimits", f"would drop or loosen the limit '{loose}'")
            row.ratelimits = [r.to_json() for r in limits]
            row.meta = metadata or {}
            row.updated_at = now
            # Keys cache their identity's limits: tell instances to drop them.
            event = RevocationEvent(principal.tenant, "key", IDENTITY_PREFIX + external_id, now)
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

    async def get(self, principal: Principal, external_id: str) -> IdentityInfo:
        principal.require("KEYS:READ")
        async with self._db() as session:
            row = await session.get(Identity, (principal.tenant, external_id))
        if row is None:
            raise NotFound("No such identity.")
        return _info(row)
