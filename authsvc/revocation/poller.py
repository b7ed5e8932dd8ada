"""The safety net under the broadcast: every instance re-reads the ``revocations`` table.

Algorithm
---------
At start, :meth:`RevocationPoller.load` applies every *live* row that the denylist keeps
(``jti``, ``sub``, ``key_tokens``, ``signing_key`` rows not yet expired; ``key`` and ``tenant``
rows only invalidate caches, which are empty at start). Then, every ``interval_s`` (or at once
when poked, e.g. after the Redis subscriber reconnects), :meth:`poll` reads::

    WHERE id > :max_id OR created_at >= :max_created - OVERLAP

and applies the rows it has not applied yet. The second half is the overlap window: ids come
from a sequence, and two transactions can commit in the other order than they took their ids
(id 10 commits after id 11). A poll that saw 11 and only asked ``id > 11`` would skip 10 for
ever. Re-reading the last ``OVERLAP_S`` seconds (by ``created_at``, the writer's clock when it
recorded the revocation) catches such a late commit, as long as the gap between recording and
commit stays under ``OVERLAP_S``; ids already applied are remembered for the window and
skipped. ``since`` derives from stored ``created_at`` values, not this instance's clock, so
clock skew between instances does not open a gap.

Consistency: a revocation whose broadcast was lost is applied here within one interval; a
failed poll (database down) is logged and retried at the next tick, while the denylist keeps
what it has, so warm checks go on refusing what was revoked before the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import func, or_, select

from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import Revocation
from authsvc.metrics import Metrics
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import Kind, RevocationEvent

log = logging.getLogger(__name__)

OVERLAP_S = 30.0
DENYLIST_KINDS = ("jti", "sub", "key_tokens", "signing_key")


def _event(row: Revocation) -> RevocationEvent:
    return RevocationEvent(
        row.tenant_id, cast(Kind, row.kind), row.value, row.cutoff, row.expires_at
    )


class RevocationPoller:
    def __init__(
        self,
        db: SessionFactory,
        denylist: Denylist,
        clock: Clock,
        metrics: Metrics,
        *,
        interval_s: float,
    ) -> None:
        self._db, self._denylist, self._clock, self._metrics = db, denylist, clock, metrics
        self.interval_s = interval_s
        self._max_id = 0
        self._max_created: datetime | None = None
        self._seen: dict[int, datetime] = {}
        self._wake = asyncio.Event()
        self.loaded = False
        self.last_poll_ok: float | None = None

    def poke(self) -> None:
        """Poll now rather than at the next tick."""
        self._wake.set()

    async def load(self) -> int:
        """Apply every live denylist row; returns how many."""
        now = self._clock.now()
        stmt = select(Revocation).where(
            Revocation.kind.in_(DENYLIST_KINDS),
            or_(Revocation.expires_at.is_(None), Revocation.expires_at > now),
        )
        async with self._db() as session:
            bounds = (
                await session.execute(
                    select(func.max(Revocation.id), func.max(Revocation.created_at))
                )
            ).one()
            rows = (await session.scalars(stmt)).all()
        for row in rows:
            self._denylist.apply(_event(row))
            self._metrics.inc(self._metrics.revocations, row.kind, "load")
        self._max_id = int(bounds[0] or 0)
        self._max_created = bounds[1]
        self.loaded = True
        return len(rows)

    async def poll(self) -> int:
        """Apply the rows not seen yet; returns how many were new."""
        if not self.loaded:
            return await self.load()
        conditions = [Revocation.id > self._max_id]
        since = None
        if self._max_created is not None:
            since = self._max_created - timedelta(seconds=OVERLAP_S)
            conditions.append(Revocation.created_at >= since)
        stmt = select(Revocation).where(or_(*conditions)).order_by(Revocation.id)
        async with self._db() as session:
            rows = (await session.scalars(stmt)).all()
        applied = 0
        for row in rows:
            if row.id in self._seen:
                continue
            self._denylist.apply(_event(row))
            self._metrics.inc(self._metrics.revocations, row.kind, "poll")
            self._seen[row.id] = row.created_at
            applied += 1
            self._max_id = max(self._max_id, row.id)
            if self._max_created is None or row.created_at > self._max_created:
                self._max_created = row.created_at
        if since is not None:
            self._seen = {i: c for i, c in self._seen.items() if c >= since}
        self._denylist.prune(self._clock.time())
        return applied

    async def run(self) -> None:
        """Poll forever; never raises (a database outage is retried at the next tick)."""
        while True:
            try:
                await self.poll()
                self.last_poll_ok = self._clock.time()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._metrics.inc(self._metrics.revocation_errors, "poll")
                log.warning("revocation poll failed (%s); retrying", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()
