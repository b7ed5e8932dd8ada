"""What issuing and verifying need to know about a tenant, cached in process.

A :class:`TenantPolicy` is the immutable view of one tenant's token settings: enabled, issuer,
accepted audiences, default and maximum TTL, signing algorithm and rotation period. Minting,
verification, JWKS and the OAuth endpoints read it on every request, so it is cached:

* by id, dropped on every ``tenant`` revocation event (tenant changed or disabled), delivered
  through the :class:`~authsvc.revocation.denylist.Denylist` listeners (:meth:`on_event`);
* entries also age out after ``ttl_s`` (a missed event is repaired by then); if the refresh
  fails because the database is down, the stale entry keeps serving, so a warm instance keeps
  verifying during an outage;
* slugs map to ids (slugs never change); unknown slugs are cached negatively for a few seconds
  so a public endpoint sprayed with made-up slugs costs at most one query per slug per period;
* a lookup that overlaps an invalidation is used for its request but not stored (epoch check),
  so an event can never be undone by a read that started before it.

Memory is bounded by ``max_entries`` (the oldest inserted entries go first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from authsvc.db.models import Tenant
from authsvc.errors import NotFound
from authsvc.revocation.events import RevocationEvent
from authsvc.tenants.service import TenantService

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    id: str
    slug: str
    enabled: bool
    issuer: str
    audiences: tuple[str, ...]
    default_token_ttl_s: int
    max_token_ttl_s: int
    signing_alg: str
    signing_key_rotation_s: int
    allow_query_token: bool

    @classmethod
    def of(cls, tenants: TenantService, row: Tenant) -> TenantPolicy:
        return cls(
            id=row.id,
            slug=row.slug,
            enabled=row.enabled,
            issuer=tenants.issuer(row),
            audiences=tuple(tenants.audiences(row)),
            default_token_ttl_s=row.default_token_ttl_s,
            max_token_ttl_s=row.max_token_ttl_s,
            signing_alg=row.signing_alg,
            signing_key_rotation_s=row.signing_key_rotation_s,
            allow_query_token=row.allow_query_token,
        )


class PolicyCache:
    def __init__(
        self,
        tenants: TenantService,
        *,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 5.0,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenants, self.ttl_s, self.negative_ttl_s = tenants, ttl_s, negative_ttl_s
        self.max_entries, self._now = max_entries, monotonic
        self._by_id: dict[str, tuple[TenantPolicy, float]] = {}
        self._slugs: dict[str, tuple[str | None, float]] = {}
        self._epoch = 0

    async def get(self, tenant_id: str) -> TenantPolicy | None:
        """The tenant's policy, or ``None`` if there is no such tenant (disabled ones included)."""
        entry = self._by_id.get(tenant_id)
        if entry is not None and self._now() - entry[1] < self.ttl_s:
            return entry[0]
        epoch = self._epoch
        try:
            row = await self._tenants.get(tenant_id)
        except NotFound:
            return None
        except Exception:
            if entry is None:
                raise
            return entry[0]  # database down: serve what we had
        policy = TenantPolicy.of(self._tenants, row)
        if epoch == self._epoch:
            self._store(policy)
        return policy

    async def by_slug(self, slug: str) -> TenantPolicy | None:
        hit = self._slugs.get(slug)
        if hit is not None:
            tenant_id, at = hit
            if tenant_id is not None:
                return await self.get(tenant_id)
            if self._now() - at < self.negative_ttl_s:
                return None
        try:
            row = await self._tenants.get_by_slug(slug)
        except NotFound:
            self._bounded(self._slugs)
            self._slugs[slug] = (None, self._now())
            return None
        policy = TenantPolicy.of(self._tenants, row)
        self._store(policy)
        return policy

    def on_event(self, event: RevocationEvent) -> None:
        if event.kind == "tenant":
            self._epoch += 1
            self._by_id.pop(event.tenant_id, None)

    def _store(self, policy: TenantPolicy) -> None:
        self._bounded(self._by_id)
        self._by_id[policy.id] = (policy, self._now())
        self._bounded(self._slugs)
        self._slugs[policy.slug] = (policy.id, self._now())

    def _bounded(self, table: dict[str, V]) -> None:
        while len(table) >= self.max_entries:
            del table[next(iter(table))]
