"""A tenant as every check and issuer sees it, and the in-process cache of it.

A :class:`TenantPolicy` is the immutable view of one tenant: enabled, issuer, accepted
audiences, default and maximum token lifetime, signing algorithm and rotation period. Minting,
verification, JWKS and the OAuth endpoints read it on every request, so :class:`TenantCache`
keeps it in process (the :class:`~authsvc.cache.Cache` primitive, guarded against stale fills):

* by id, dropped on every ``tenant`` revocation event (tenant changed or disabled), delivered
  through the :class:`~authsvc.revocation.denylist.Denylist` listeners (:meth:`on_event`);
* entries also age out after ``ttl_s``; if the refresh fails because the database is down, the
  stale entry keeps serving, so a warm instance keeps verifying during an outage;
* slugs map to ids (slugs never change); unknown slugs are cached negatively for a few seconds
  so a public endpoint sprayed with made-up slugs costs at most one query per slug per period.

Revocation horizon (:meth:`TenantPolicy.revocation_horizon`): a revocation of a ``jti`` or a
``sub`` must outlive every token it can refuse. A token minted now lives at most
``max_token_ttl_s``; one minted before the tenant lowered its maximum may live until
``token_horizon_at``, recorded when the maximum was lowered (DESIGN §8, "revocations outlive
every token they refuse").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from authsvc.cache import Cache, CacheBounds, Counter
from authsvc.db.engine import SessionFactory
from authsvc.db.models import Tenant
from authsvc.revocation.events import RevocationEvent, horizon


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    id: str
    slug: str
    name: str
    enabled: bool
    issuer: str
    audiences: tuple[str, ...]
    default_token_ttl_s: int
    max_token_ttl_s: int
    signing_alg: str
    signing_key_rotation_s: int
    allow_query_token: bool
    token_horizon_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Tenant, base_url: str) -> TenantPolicy:
        issuer = f"{base_url}/t/{row.slug}"
        return cls(
            id=row.id,
            slug=row.slug,
            name=row.name,
            enabled=row.enabled,
            issuer=issuer,
            audiences=tuple(row.audiences) or (issuer,),
            default_token_ttl_s=row.default_token_ttl_s,
            max_token_ttl_s=row.max_token_ttl_s,
            signing_alg=row.signing_alg,
            signing_key_rotation_s=row.signing_key_rotation_s,
            allow_query_token=row.allow_query_token,
            token_horizon_at=row.token_horizon_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def revocation_horizon(self, now: datetime) -> datetime:
        """Until when a revocation issued ``now`` can still match a live token."""
        return horizon(now, self.max_token_ttl_s, self.token_horizon_at)

    def tokens_outlive(self, now: datetime) -> datetime:
        """The latest expiry of a token already minted, were the maximum lowered now."""
        latest = now + timedelta(seconds=self.max_token_ttl_s)
        if self.token_horizon_at is not None:
            latest = max(latest, self.token_horizon_at)
        return latest.astimezone(UTC)


class TenantCache:
    """Tenants by id and by slug (see the module docstring)."""

    def __init__(
        self,
        db: SessionFactory,
        base_url: str,
        *,
        count: Counter,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 5.0,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db, self._base_url = db, base_url
        bounds = CacheBounds(
            ttl_s=ttl_s,
            max_entries=max_entries,
            negative_ttl_s=negative_ttl_s,
            count=count,
            monotonic=monotonic,
        )
        self.by_id: Cache[str, TenantPolicy | None] = bounds.cache("tenant")
        self._slugs: Cache[str, str | None] = bounds.cache("tenant_slug")

    async def get(self, tenant_id: str) -> TenantPolicy | None:
        """The tenant, disabled ones included, or ``None`` if there is no such tenant."""
        return await self.by_id.get(tenant_id, lambda: self._load(tenant_id))

    async def by_slug(self, slug: str) -> TenantPolicy | None:
        async def load() -> str | None:
            policy = await self._load_by_slug(slug)
            return None if policy is None else policy.id

        tenant_id = await self._slugs.get(slug, load)
        return None if tenant_id is None else await self.get(tenant_id)

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind == "tenant":
            self.by_id.invalidate(event.tenant_id)

    async def _load(self, tenant_id: str) -> TenantPolicy | None:
        async with self._db() as session:
            row = await session.get(Tenant, tenant_id)
        return None if row is None else TenantPolicy.of(row, self._base_url)

    async def _load_by_slug(self, slug: str) -> TenantPolicy | None:
        async with self._db() as session:
            row = await session.scalar(select(Tenant).where(Tenant.slug == slug))
        return None if row is None else TenantPolicy.of(row, self._base_url)
