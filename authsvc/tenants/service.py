"""Tenant lifecycle.

Creating a tenant also creates its first ``ADMIN`` key and, through the ``on_create`` hooks
(signing keys), everything else it needs, in the same transaction. Deleting a tenant disables
it: the row stays (audit history, slug reservation), a ``tenant`` revocation event makes every
instance drop it from its caches, and every credential of the tenant stops working at once.
Lowering ``max_token_ttl_s`` records until when tokens minted under the old maximum may live,
so revocations keep outliving them (:meth:`TenantPolicy.revocation_horizon`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authsvc.algorithms import ALGORITHMS
from authsvc.audit.service import record as audit
from authsvc.clock import Clock
from authsvc.db.engine import SessionFactory
from authsvc.db.models import Tenant
from authsvc.db.pagination import paginate
from authsvc.errors import Code, Conflict, InvalidRequest, NotFound
from authsvc.ids import new_id
from authsvc.keys.service import KeyService, check_name
from authsvc.keys.state import CreatedKey
from authsvc.revocation.events import RevocationBus, RevocationEvent
from authsvc.revocation.events import record as record_revocation
from authsvc.scopes import ADMIN, Grant, Scope
from authsvc.settings import Settings
from authsvc.tenants.policy import TenantPolicy

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
TenantHook = Callable[[AsyncSession, Tenant, datetime], Awaitable[None]]
MAX_TTL_S = 30 * 86400
MIN_ROTATION_S = 3600
EDITABLE = frozenset(
    {
        "name",
        "enabled",
        "default_token_ttl_s",
        "max_token_ttl_s",
        "audiences",
        "signing_alg",
        "signing_key_rotation_s",
        "allow_query_token",
    }
)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50].strip("-")
    return slug or "tenant"


def _validate(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - EDITABLE
    if unknown:
        raise InvalidRequest(f"Unknown tenant field '{sorted(unknown)[0]}'.")
    out = dict(changes)
    if "name" in out:
        out["name"] = check_name(out["name"])
    if "signing_alg" in out and out["signing_alg"] not in ALGORITHMS:
        raise InvalidRequest(
            f"signing_alg must be one of {', '.join(ALGORITHMS)}.", code=Code.INVALID_ALG
        )
    rotation = out.get("signing_key_rotation_s")
    if rotation is not None and not (rotation == 0 or rotation >= MIN_ROTATION_S):
        raise InvalidRequest(
            f"signing_key_rotation_s must be 0 (off) or at least {MIN_ROTATION_S}."
        )
    for url in out.get("audiences", []):
        if not isinstance(url, str) or not 1 <= len(url) <= 500:
            raise InvalidRequest("audiences must be strings.", code=Code.INVALID_AUDIENCE)
    return out


class TenantService:
    def __init__(
        self,
        *,
        db: SessionFactory,
        clock: Clock,
        settings: Settings,
        keys: KeyService,
        bus: RevocationBus,
        on_create: Sequence[TenantHook] = (),
        on_update: Sequence[TenantHook] = (),
    ) -> None:
        self._db, self._clock, self._settings = db, clock, settings
        self._keys, self._bus = keys, bus
        self._on_create, self._on_update = tuple(on_create), tuple(on_update)
        """``on_update`` hooks run inside the update transaction, after the changes."""

    def _policy(self, row: Tenant) -> TenantPolicy:
        return TenantPolicy.of(row, self._settings.effective_base_url)

    async def create(
        self, *, name: str, slug: str | None, actor: str
    ) -> tuple[TenantPolicy, CreatedKey]:
        name = check_name(name)
        if slug is not None and not _SLUG.match(slug):
            raise InvalidRequest(
                "slug must be 1-63 lower-case letters, digits and inner hyphens.",
                code=Code.INVALID_SLUG,
            )
        candidates = [slug] if slug else [slugify(name), f"{slugify(name)}-{secrets.token_hex(3)}"]
        for i, candidate in enumerate(candidates):
            try:
                return await self._create(name, candidate, actor)
            except IntegrityError:
                if i == len(candidates) - 1:
                    raise Conflict(f"Slug '{candidate}' is taken.", code=Code.SLUG_TAKEN) from None
        raise AssertionError("unreachable")

    async def _create(self, name: str, slug: str, actor: str) -> tuple[TenantPolicy, CreatedKey]:
        now = self._clock.now()
        s = self._settings
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
            token_horizon_at=None,
            created_at=now,
            updated_at=now,
        )
        async with self._db.begin() as session:
            session.add(tenant)
            await session.flush()
            admin = await self._keys.insert_key(
                session,
                tenant_id=tenant.id,
                name="admin",
                grants=(Grant(Scope(ADMIN)),),
                now=now,
                created_by=None,
            )
            for hook in self._on_create:
                await hook(session, tenant, now)
            audit(
                session,
                now=now,
                actor=actor,
                action="tenant.create",
                target_type="tenant",
                target_id=tenant.id,
                tenant_id=tenant.id,
                details={"slug": slug, "admin_key_id": admin.info.id},
            )
        return self._policy(tenant), admin

    async def get(self, tenant_id: str) -> TenantPolicy:
        found = await self.find(tenant_id)
        if found is None:
            raise NotFound("No such tenant.")
        return found

    async def find(self, tenant_id: str) -> TenantPolicy | None:
        async with self._db() as session:
            tenant = await session.get(Tenant, tenant_id)
        return None if tenant is None else self._policy(tenant)

    async def find_by_slug(self, slug: str) -> TenantPolicy | None:
        async with self._db() as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
        return None if tenant is None else self._policy(tenant)

    async def get_by_ref(self, ref: str) -> TenantPolicy:
        """By id or by slug (the CLI takes either)."""
        found = await self.find(ref) or await self.find_by_slug(ref)
        if found is None:
            raise NotFound("No such tenant.")
        return found

    async def list(
        self, *, limit: int | None, cursor: str | None
    ) -> tuple[list[TenantPolicy], str | None]:
        async with self._db() as session:
            rows, next_cursor = await paginate(
                session, select(Tenant), Tenant.id, limit=limit, cursor=cursor
            )
        return [self._policy(r) for r in rows], next_cursor

    async def update(
        self, tenant_id: str, changes: Mapping[str, Any], *, actor: str
    ) -> TenantPolicy:
        """Apply ``changes`` (the fields present, see :data:`EDITABLE`)."""
        values = _validate(changes)
        now = self._clock.now()
        async with self._db.begin() as session:
            tenant = await session.get(Tenant, tenant_id, with_for_update=True)
            if tenant is None:
                raise NotFound("No such tenant.")
            default = values.get("default_token_ttl_s", tenant.default_token_ttl_s)
            maximum = values.get("max_token_ttl_s", tenant.max_token_ttl_s)
            if not 1 <= default <= maximum <= MAX_TTL_S:
                raise InvalidRequest(
                    f"Need 1 <= default_token_ttl_s <= max_token_ttl_s <= {MAX_TTL_S}.",
                    code=Code.INVALID_TTL,
                )
            if maximum < tenant.max_token_ttl_s:
                tenant.token_horizon_at = self._policy(tenant).tokens_outlive(now)
            for field, value in values.items():
                setattr(tenant, field, value)
            tenant.updated_at = now
            for hook in self._on_update:
                await hook(session, tenant, now)
            event = RevocationEvent(tenant.id, "tenant", tenant.id, now)
            record_revocation(session, event, now=now)
            audit(
                session,
                now=now,
                actor=actor,
                action="tenant.disable" if values.get("enabled") is False else "tenant.update",
                target_type="tenant",
                target_id=tenant.id,
                tenant_id=tenant.id,
                details={"fields": sorted(values)},
            )
        await self._bus.publish([event])
        return self._policy(tenant)

    async def disable(self, tenant_id: str, *, actor: str) -> TenantPolicy:
        return await self.update(tenant_id, {"enabled": False}, actor=actor)
