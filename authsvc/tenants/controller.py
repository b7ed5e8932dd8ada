"""Operator routes: tenant administration (``Authorization: Bearer <operator key>``)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, JSONBody

from authsvc.db.models import Tenant
from authsvc.tenants.schemas import (
    AdminKeyOut,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantPage,
    TenantPatchIn,
)
from authsvc.tenants.service import TenantPatch, TenantService
from authsvc.web.auth import provide_operator
from authsvc.web.deps import PrincipalDep, ServicesDep


def tenant_out(tenants: TenantService, t: Tenant) -> TenantOut:
    return TenantOut(
        id=t.id,
        slug=t.slug,
        name=t.name,
        enabled=t.enabled,
        issuer=tenants.issuer(t),
        audiences=tenants.audiences(t),
        default_token_ttl_s=t.default_token_ttl_s,
        max_token_ttl_s=t.max_token_ttl_s,
        signing_alg=t.signing_alg,
        signing_key_rotation_s=t.signing_key_rotation_s,
        allow_query_token=t.allow_query_token,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


class TenantController(Controller):
    path = "/v1/tenants"
    tags = ["tenants (operator)"]
    dependencies = {"operator": Provide(provide_operator)}

    @post("/")
    async def create_tenant(
        self, data: JSONBody[TenantCreate], services: ServicesDep, operator: PrincipalDep
    ) -> TenantCreated:
        tenant, admin = await services.tenants.create(
            name=data.name, slug=data.slug, actor=operator.actor
        )
        return TenantCreated(
            tenant=tenant_out(services.tenants, tenant),
            admin_key=AdminKeyOut(id=admin.record.id, key=admin.key),
        )

    @get("/")
    async def list_tenants(
        self,
        services: ServicesDep,
        operator: PrincipalDep,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> TenantPage:
        rows, next_cursor = await services.tenants.list(limit=limit, cursor=cursor)
        return TenantPage([tenant_out(services.tenants, t) for t in rows], next_cursor)

    @get("/{tenant_id:str}")
    async def get_tenant(
        self, tenant_id: FromPath[str], services: ServicesDep, operator: PrincipalDep
    ) -> TenantOut:
        return tenant_out(services.tenants, await services.tenants.get(tenant_id))

    @patch("/{tenant_id:str}")
    async def update_tenant(
        self,
        tenant_id: FromPath[str],
        data: JSONBody[TenantPatchIn],
        services: ServicesDep,
        operator: PrincipalDep,
    ) -> TenantOut:
        changes = TenantPatch(**{f: getattr(data, f) for f in data.__struct_fields__})
        tenant = await services.tenants.update(tenant_id, changes, actor=operator.actor)
        return tenant_out(services.tenants, tenant)

    @delete("/{tenant_id:str}", status_code=200)
    async def disable_tenant(
        self, tenant_id: FromPath[str], services: ServicesDep, operator: PrincipalDep
    ) -> TenantOut:
        tenant = await services.tenants.disable(tenant_id, actor=operator.actor)
        return tenant_out(services.tenants, tenant)
