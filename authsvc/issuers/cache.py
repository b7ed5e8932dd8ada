"""The trusted issuers of each tenant, cached in process: exchanges, CORS preflights and checks
of exchanged tokens touch no database when warm.

A tenant has a handful of issuers, so they are cached together, per tenant (one
:class:`~authsvc.cache.Cache` entry: the tuple of its issuers), and the derived views are
computed from it: an issuer by ``iss`` (the exchange), by id (a token minted through it), and
the union of the enabled issuers' ``allowed_origins`` (CORS). An ``issuer`` revocation event (an
issuer created, changed, disabled or deleted) drops the tenant's entry on every instance, and a
read that started before it is not stored, so a disabled issuer's tokens are refused on the
next check everywhere. When the database is down, the last known issuers keep serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from authsvc.cache import Cache, Counter
from authsvc.db.engine import SessionFactory
from authsvc.db.models import TrustedIssuer
from authsvc.issuers.state import IssuerState, state_of
from authsvc.revocation.events import RevocationEvent


class IssuerCache:
    def __init__(
        self,
        db: SessionFactory,
        *,
        count: Counter,
        ttl_s: float = 300.0,
        max_tenants: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._by_tenant: Cache[str, tuple[IssuerState, ...]] = Cache(
            "issuer", ttl_s=ttl_s, max_entries=max_tenants, count=count, monotonic=monotonic
        )

    async def of_tenant(self, tenant_id: str) -> tuple[IssuerState, ...]:
        return await self._by_tenant.get(tenant_id, lambda: self._load(tenant_id))

    async def by_issuer(self, tenant_id: str, iss: str) -> IssuerState | None:
        """The tenant's issuer whose ``issuer`` is exactly ``iss`` (enabled or not)."""
        for state in await self.of_tenant(tenant_id):
            if state.issuer == iss:
                return state
        return None

    async def by_id(self, tenant_id: str, issuer_id: str) -> IssuerState | None:
        for state in await self.of_tenant(tenant_id):
            if state.id == issuer_id:
                return state
        return None

    async def origins(self, tenant_id: str) -> frozenset[str]:
        """Every origin an enabled issuer of the tenant allows (CORS preflight)."""
        return frozenset(
            origin
            for state in await self.of_tenant(tenant_id)
            if state.enabled
            for origin in state.allowed_origins
        )

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind in ("issuer", "tenant"):
            self._by_tenant.invalidate(event.tenant_id)

    async def _load(self, tenant_id: str) -> tuple[IssuerState, ...]:
        async with self._db() as session:
            rows = (
                await session.scalars(
                    select(TrustedIssuer)
                    .where(TrustedIssuer.tenant_id == tenant_id)
                    .order_by(TrustedIssuer.id)
                )
            ).all()
        return tuple(state_of(r) for r in rows)
