"""Cached tenant settings the hot path needs (``allow_query_token``), dropped on ``tenant``
events like the key records are (see :mod:`authsvc.keys.cache`); served stale if the database
is down when an entry ages out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from authsvc.metrics import Metrics
from authsvc.revocation.events import RevocationEvent
from authsvc.tenants.service import TenantService


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: str
    slug: str
    enabled: bool
    allow_query_token: bool


class TenantCache:
    def __init__(
        self,
        tenants: TenantService,
        metrics: Metrics,
        *,
        ttl_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenants, self._metrics, self.ttl_s, self._now = tenants, metrics, ttl_s, monotonic
        self._entries: dict[str, tuple[TenantInfo, float]] = {}
        self._epoch = 0

    async def get(self, tenant_id: str) -> TenantInfo:
        entry = self._entries.get(tenant_id)
        if entry is not None and self._now() - entry[1] < self.ttl_s:
            self._metrics.inc(self._metrics.cache, "tenant", "hit")
            return entry[0]
        self._metrics.inc(self._metrics.cache, "tenant", "miss")
        epoch = self._epoch
        try:
            row = await self._tenants.get(tenant_id)
        except Exception:
            if entry is None:
                raise
            self._metrics.inc(self._metrics.cache, "tenant", "stale")
            return entry[0]
        info = TenantInfo(row.id, row.slug, row.enabled, row.allow_query_token)
        if epoch == self._epoch:
            self._entries[tenant_id] = (info, self._now())
        return info

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind == "tenant":
            self._epoch += 1
            self._entries.pop(event.tenant_id, None)
