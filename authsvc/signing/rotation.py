"""Automatic signing-key rotation: a background task of every serving instance.

At start and then every ``interval_s`` (60 s) it:

1. gives keys to tenants that have none (created before signing keys existed);
2. rotates every tenant whose active key is older than its ``signing_key_rotation_s``
   (0 = never); the rotation names the active kid it expects, so when several instances find
   the same tenant due, the row lock and conditional updates in
   :meth:`~authsvc.signing.service.SigningKeyService.rotate` let exactly one of them rotate;
3. removes retired keys past ``remove_after``.

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

from authsvc.clock import Clock
from authsvc.signing.service import SigningKeyService

log = logging.getLogger(__name__)

ROTATION_ACTOR = "system:rotation"


@dataclass(slots=True)
class RotationReport:
    created: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class RotationTask:
    def __init__(self, signing: SigningKeyService, clock: Clock, *, interval_s: float = 60.0):
        self._signing, self._clock, self.interval_s = signing, clock, interval_s

    async def run_once(self) -> RotationReport:
        report = RotationReport()
        for tenant_id, active in await self._signing.due(self._clock.now()):
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
        report.removed = await self._signing.remove_expired(self._clock.now())
        if report.rotated or report.removed or report.created:
            log.info(
                "signing keys: %d rotated, %d removed, %d tenants given keys",
                len(report.rotated),
                len(report.removed),
                len(report.created),
            )
        return report

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
