"""Automatic signing-key rotation: a background task of every serving instance.

At start and then every ``interval_s`` (60 s) it:

1. gives keys to tenants that have none (created before signing keys existed);
2. rotates every tenant whose active key is older than its ``signing_key_rotation_s``
   (0 = never); the rotation names the active kid it expects, so when several instances find
   the same tenant due, the row lock and conditional updates in
   :meth:`~authsvc.signing.service.SigningKeyService.rotate` let exactly one of them rotate;
3. removes retired keys past ``remove_after`` (:meth:`RotationTask.remove_expired`), recording a
   ``signing_key`` revocation event so every instance forgets the key.

Every instance runs it (no leader election needed: the work is idempotent under those
conditions). A failure (database down) is logged and retried at the next tick; it never stops
the task or the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import SigningKey, Tenant
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation
from authsvc.signing.keyring import ACTIVE, RETIRED
from authsvc.signing.service import SigningKeyService

log = logging.getLogger(__name__)

ROTATION_ACTOR = "system:rotation"
REMOVED_EVENT_TTL_S = 86400


@dataclass(slots=True)
class RotationReport:
    created: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class RotationTask:
    def __init__(
        self,
        signing: SigningKeyService,
        db: SessionFactory,
        clock: Clock,
        bus: RevocationBus,
        *,
        interval_s: float = 60.0,
    ) -> None:
        self._signing, self._db, self._clock, self._bus = signing, db, clock, bus
        self.interval_s = interval_s

    async def run_once(self) -> RotationReport:
        report = RotationReport()
        for tenant_id, active in await self.due(self._clock.now()):
            try:
                if active is None:
                    if await self._signing.ensure_keys(tenant_id, actor=ROTATION_ACTOR):
                        report.created.append(tenant_id)
                elif await self._signing.rotate(
                    tenant_id, actor=ROTATION_ACTOR, expected_active=active
                ):
                    report.rotated.append(tenant_id)
            except Exception as exc:  # one tenant's failure must not stop the others
                log.warning("signing-key rotation of %s failed (%s)", tenant_id, type(exc).__name__)
        report.removed = await self.remove_expired(self._clock.now())
        if report.rotated or report.removed or report.created:
            log.info(
                "signing keys: %d rotated, %d removed, %d tenants given keys",
                len(report.rotated),
                len(report.removed),
                len(report.created),
            )
        return report

    async def due(self, now: datetime) -> list[tuple[str, str | None]]:
        """``(tenant_id, active kid)`` of enabled tenants whose active key is due for rotation
        (or that have no active key, kid ``None``)."""
        async with self._db() as session:
            tenants = (
                await session.execute(
                    select(Tenant.id, Tenant.signing_key_rotation_s).where(Tenant.enabled)
                )
            ).all()
            actives = {
                row.tenant_id: (row.kid, row.activated_at or row.created_at)
                for row in (
                    await session.execute(
                        select(
                            SigningKey.tenant_id,
                            SigningKey.kid,
                            SigningKey.activated_at,
                            SigningKey.created_at,
                        ).where(SigningKey.state == ACTIVE)
                    )
                ).all()
            }
        out: list[tuple[str, str | None]] = []
        for tenant_id, period in tenants:
            active = actives.get(tenant_id)
            if active is None:
                out.append((tenant_id, None))
            elif period > 0 and active[1] + timedelta(seconds=period) <= now:
                out.append((tenant_id, active[0]))
        return out

    async def remove_expired(self, now: datetime) -> list[str]:
        """Delete retired keys past ``remove_after``; returns their kids."""
        async with self._db.begin() as session:
            rows = (
                await session.execute(
                    select(SigningKey.kid, SigningKey.tenant_id).where(
                        SigningKey.state == RETIRED, SigningKey.remove_after <= now
                    )
                )
            ).all()
            events: list[RevocationEvent] = []
            for kid, tenant_id in rows:
                gone = await session.execute(
                    delete(SigningKey).where(
                        SigningKey.kid == kid,
                        SigningKey.state == RETIRED,
                        SigningKey.remove_after <= now,
                    )
                )
                if int(getattr(gone, "rowcount", 0)) != 1:
                    continue  # another instance removed it first
                event = RevocationEvent(
                    tenant_id,
                    "signing_key",
                    kid,
                    now,
                    now + timedelta(seconds=REMOVED_EVENT_TTL_S),
                )
                record_revocation(session, event, now=now)
                audit(
                    session,
                    now=now,
                    actor="system",
                    action="signing_key.remove",
                    target_type="signing_key",
                    target_id=kid,
                    tenant_id=tenant_id,
                )
                events.append(event)
        if events:
            await self._bus.publish(events)
        return [e.value for e in events]

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("signing-key rotation check failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(self.interval_s)


@contextlib.asynccontextmanager
async def rotating(task: RotationTask) -> AsyncIterator[None]:
    """Run ``task`` for the lifetime of the context (the app's lifespan)."""
    runner = asyncio.create_task(task.run(), name="authsvc-signing-key-rotation")
    try:
        yield
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
