"""Tenant lifecycle.

Creating a tenant also creates its first ``ADMIN`` key (and, through ``on_create`` hooks, its
signing keys) in the same transaction. Deleting a tenant disables it: the row stays (audit
history, slug reservation), a ``tenant`` revocation event makes every instance drop it from its
caches, and every credential of the tenant stops working at once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import Tenant
from authsvc.db.pagination import paginate
from authsvc.errors import Conflict, InvalidRequest, NotFound
from authsvc.ids import new_id
from authsvc.keys.service import CreatedKey, KeyService
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation
from authsvc.scopes import ADMIN, Grant, Scope
from authsvc.settings import Settings

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
TenantHook = Callable[[AsyncSession, Tenant, datetime], Awaitable[None]]
SIGNING_ALGS = ("ES256", "RS256", "EdDSA")


@dataclass(slots=True)
class TenantPatch:
    """Fields to change; ``None`` means unchanged."""

    name: str | None = None
    enabled: bool | None = None
    default_token_ttl_s: int | None = None
    max_token_ttl_s: int | None = None
    audiences: list[str] | None = None
    signing_alg: str | None = None
    signing_key_rotation_s: int | None = None
    allow_query_token: bool | None = None

    def changed(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50].strip("-")
    return slug or "tenant"


class TenantService:
    def __init__(
        self,
        *,
        db: SessionFactory,
        clock: Clock,
        settings: Settings,
        keys: KeyService,
        bus: RevocationBus,
    ) -> None:
        self.db, self.clock, self.settings, self.keys, self.bus = db, clock, settings, keys, bus
        self.on_create: list[TenantHook] = []
        self.on_update: list[TenantHook] = []
        """Run inside the update transaction, after the changes are applied to the row."""

    def issuer(self, tenant: Tenant) -> str:
        return f"{self.settings.effective_base_url}/t/{tenant.slug}"

    def audiences(self, tenant: Tenant) -> list[str]:
        return list(tenant.audiences) or [self.issuer(tenant)]

    async def create(self, *, name: str, slug: str | None, actor: str) -> tuple[Tenant, CreatedKey]:
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidRequest("name must be 1 to 200 characters.", code="INVALID_NAME")
        if slug is not None and not _SLUG.match(slug):
            raise InvalidRequest(
                "slug must be 1-63 lower-case letters, digits and inner hyphens.",
                code="INVALID_SLUG",
            )
        candidates = [slug] if slug else [slugify(name), f"{slugify(name)}-{secrets.token_hex(3)}"]
        for i, candidate in enumerate(candidates):
            try:
                return await self._create(name, candidate, actor)
            except IntegrityError:
                if i == len(candidates) - 1:
                    raise Conflict(f"Slug '{candidate}' is taken.", code="SLUG_TAKEN") from None
        raise AssertionError("unreachable")

    async def _create(self, name: str, slug: str, actor: str) -> tuple[Tenant, CreatedKey]:
        now = self.clock.now()
        s = self.settings
        tenant = Tenant(
            id=new_id("ten", now.timestamp()),
            slug=slug,
            name=name,
            enabled=True,
            default_token_ttl_s=s.default_token_ttl_s,
            max_token_ttl_s=s.max_token_ttl_s,
            audiences=[],
            signing_alg=s.signing_alg,
            signing_key_rotation_s=s.signing_key_rotation_s,
            allow_query_token=False,
            created_at=now,
            updated_at=now,
        )
        async with self.db.begin() as session:
            session.add(tenant)
            await session.flush()
            admin = await self.keys.insert_key(
                session,
                tenant_id=tenant.id,
                name="admin",
                grants=(Grant(Scope(ADMIN)),),
                now=now,
                created_by=None,
            )
            for hook in self.on_create:
                await hook(session, tenant, now)
            audit(
                session,
                now=now,
                actor=actor,
                action="tenant.create",
                target_type="tenant",
                target_id=tenant.id,
                tenant_id=tenant.id,
                details={"slug": slug, "admin_key_id": admin.record.id},
            )
        return tenant, admin

    async def get(self, tenant_id: str) -> Tenant:
        async with self.db() as session:
            tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("No such tenant.")
        return tenant

    async def get_by_slug(self, slug: str) -> Tenant:
        async with self.db() as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise NotFound("No such tenant.")
        return tenant

    async def list(
        self, *, limit: int | None, cursor: str | None
    ) -> tuple[Sequence[Tenant], str | None]:
        async with self.db() as session:
            return await paginate(session, select(Tenant), Tenant.id, limit=limit, cursor=cursor)

    async def update(self, tenant_id: str, patch: TenantPatch, *, actor: str) -> Tenant:
        changes = patch.changed()
        if "name" in changes and not 1 <= len(changes["name"].strip()) <= 200:
            raise InvalidRequest("name must be 1 to 200 characters.", code="INVALID_NAME")
        if "signing_alg" in changes and changes["signing_alg"] not in SIGNING_ALGS:
            raise InvalidRequest("signing_alg must be ES256, RS256 or EdDSA.", code="INVALID_ALG")
        if "signing_key_rotation_s" in changes and not (
            changes["signing_key_rotation_s"] == 0 or changes["signing_key_rotation_s"] >= 3600
        ):
            raise InvalidRequest(
                "signing_key_rotation_s must be 0 (off) or at least 3600.", code="INVALID_REQUEST"
            )
        for url in changes.get("audiences", []):
            if not isinstance(url, str) or not 1 <= len(url) <= 500:
                raise InvalidRequest("audiences must be strings.", code="INVALID_AUDIENCE")
        now = self.clock.now()
        async with self.db.begin() as session:
            tenant = await session.get(Tenant, tenant_id, with_for_update=True)
            if tenant is None:
                raise NotFound("No such tenant.")
            default = changes.get("default_token_ttl_s", tenant.default_token_ttl_s)
            maximum = changes.get("max_token_ttl_s", tenant.max_token_ttl_s)
            if not 1 <= default <= maximum <= 30 * 86400:
                raise InvalidRequest(
                    "Need 1 <= default_token_ttl_s <= max_token_ttl_s <= 2592000.",
                    code="INVALID_TTL",
                )
            for k, v in changes.items():
                setattr(tenant, k, v.strip() if k == "name" else v)
            tenant.updated_at = now
            for hook in self.on_update:
                await hook(session, tenant, now)
            event = RevocationEvent(tenant.id, "tenant", tenant.id, now)
            record_revocation(session, event, now=now)
            audit(
                session,
                now=now,
                actor=actor,
                action="tenant.disable" if changes.get("enabled") is False else "tenant.update",
                target_type="tenant",
                target_id=tenant.id,
                tenant_id=tenant.id,
                details={"fields": sorted(changes)},
            )
        await self.bus.publish([event])
        return tenant

    async def disable(self, tenant_id: str, *, actor: str) -> Tenant:
        return await self.update(tenant_id, TenantPatch(enabled=False), actor=actor)
