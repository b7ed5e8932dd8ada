"""``last_used_at`` of API keys, written off the hot path.

A check only records "key K was used at T" in memory (a dict assignment). A background task
writes the pending times every ``interval_s`` (default 60 s) in one batched ``UPDATE``, so each
key's row is written at most once per interval per instance, whatever its traffic, and a
database outage never slows a check: failed batches are kept and retried with the next one.
``last_used_at`` is therefore up to one interval (plus the outage) behind, and with several
instances each writes its own latest time: the column is "used around then", not an audit.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, update

from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import ApiKey

log = logging.getLogger(__name__)
MAX_PENDING = 100_000


class UsageRecorder:
    def __init__(self, db: SessionFactory, clock: Clock, *, interval_s: float = 60.0) -> None:
        self._db, self._clock, self.interval_s = db, clock, interval_s
        self._pending: dict[str, float] = {}
        self._second = 0.0

    def touch(self, key_id: str) -> None:
        """Record a use (one dict assignment; the time is shared within a second, so a burst
        of distinct keys does not allocate a timestamp each)."""
        now = self._clock.time()
        if now - self._second >= 1.0:
            self._second = now
        if key_id in self._pending or len(self._pending) < MAX_PENDING:
            self._pending[key_id] = self._second

    async def flush(self) -> int:
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        table = cast(Table, ApiKey.__table__)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(last_used_at=bindparam("b_at"))
        )
        try:
            async with self._db.begin() as session:
                await session.execute(
                    stmt,
                    [
                        {"b_id": k, "b_at": datetime.fromtimestamp(t, UTC)}
                        for k, t in sorted(batch.items())
                    ],
                )
        except Exception:
            for k, t in batch.items():  # keep them for the next round, newer times win
                self._pending.setdefault(k, t)
            raise
        return len(batch)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("last_used_at write failed (%s); will retry", type(exc).__name__)
