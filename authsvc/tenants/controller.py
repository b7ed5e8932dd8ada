"""Operator routes: tenant administration (``Authorization: Bearer <operator key>``)."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authsvc.tenants.policy import TenantPolicy
from authsvc.tenants.schemas import (
    AdminKeyOut,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantPage,
    TenantPatchIn,
)
from authsvc.tenants.service import TenantService
from authsvc.web.deps import Operator
from authsvc.web.schemas import struct_from

Tenants = NamedDependency[TenantService]


def tenant_out(t: TenantPolicy) -> TenantOut:
    return struct_from(TenantOut, t, audiences=list(t.audiences))


class TenantController(Controller):
    path = "/v1/tenants"
    tags = ["tenants (operator)"]

    @post("/")
    async def create_tenant(
        self, data: JSONBody[TenantCreate], tenants: Tenants, operator: Operator
    ) -> TenantCreated:
        tenant, admin = await tenants.create(name=data.name, slug=data.slug, actor=operator.actor)
        return TenantCreated(
            tenant=tenant_out(tenant), admin_key=AdminKeyOut(id=admin.info.id, key=admin.key)
        )

    @get("/")
    async def list_tenants(
        self,
        tenants: Tenants,
        operator: Operator,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> TenantPage:
        rows, next_cursor = await tenants.list(limit=limit, cursor=cursor)
        return TenantPage([tenant_out(t) for t in rows], next_cursor)

    @get("/{tenant_id:str}")
    async def get_tenant(
        self, tenant_id: FromPath[str], tenants: Tenants, operator: Operator
    ) -> TenantOut:
        return tenant_out(await tenants.get(tenant_id))

    @patch("/{tenant_id:str}")
    async def update_tenant(
        self,
        tenant_id: FromPath[str],
        data: JSONBody[TenantPatchIn],
        tenants: Tenants,
        operator: Operator,
    ) -> TenantOut:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        return tenant_out(await tenants.update(tenant_id, changes, actor=operator.actor))

    @delete("/{tenant_id:str}", status_code=200)
    async def disable_tenant(
        self, tenant_id: FromPath[str], tenants: Tenants, operator: Operator
    ) -> TenantOut:
        return tenant_out(await tenants.disable(tenant_id, actor=operator.actor))
